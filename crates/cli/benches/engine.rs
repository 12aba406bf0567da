//! Issue 14: the plugin inside the real Fluent Bit, side by side with the `null` output and
//! the core `kinesis_firehose` plugin, on the same files.
//!
//! Fluent Bit (`FLUENT_BIT_BIN`, else `../shared/fluent-bit/bin/fluent-bit`) tails a JSON-lines
//! file with `Exit_On_Eof On` (it exits once the file is read and every chunk flushed),
//! `Mem_Buf_Limit 64M`, outputs with `workers 2`; the Firehose stand-in (in this process,
//! TLS with its own CA, on 127.0.0.1:443, because the core plugin always dials 443) has no
//! quotas. Per run: wall time, when the last record arrived, Fluent Bit's CPU seconds (from
//! `wait4`) and peak RSS (`VmHWM`, and the file-backed part of the largest RSS sampled), and
//! the records at the receiving end (lost, duplicated, by `seq`). "Marginal" is minus the
//! `null` output's run of the same round. Runs alternate, three rounds.
//!
//! Variants: `null`; `kinesis_firehose` (1 stream, the core plugin's defaults); and
//! `firehose_fanout` in the default configuration (4 streams, sync, aggregation auto,
//! `stream_bytes_per_second 1000MiB` so the stand-in's speed, not the quota, is the limit),
//! then the same over plain http (what TLS costs), `delivery_mode async`, `compression gzip`,
//! `compression zstd`.
//!
//! `cargo bench -p firehose-fanout-cli --bench engine` (~5 min); `ENGINE_ONLY=sync,http`
//! runs only the outputs whose names have one of those words (null and kinesis_firehose
//! always run), `ENGINE_ROUNDS` and `ENGINE_SCALE` shorten it, `ENGINE_LOG_LEVEL=debug`
//! keeps each task's timing in the runs' logs (below target/bench-results/tmp/engine).

mod common;

use common::*;
use firehose_emulator::{Emulator, EmulatorConfig, StreamSpec, TlsIdentity};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Instant, SystemTime};

const STREAMS: [&str; 4] = ["eng-0", "eng-1", "eng-2", "eng-3"];
/// Rounds, and a fraction of the records, for a quick look: `ENGINE_ROUNDS`, `ENGINE_SCALE`.
fn rounds() -> usize {
    std::env::var("ENGINE_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
}

fn scale() -> f64 {
    std::env::var("ENGINE_SCALE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1.0)
}

struct Workload {
    name: &'static str,
    records: u64,
    line: fn(u64) -> String,
}

fn small_line(seq: u64) -> String {
    format!("{{\"seq\":{seq},\"level\":\"info\",\"log\":\"GET /api/v1/items 200 12ms user=42 req={seq:08x}\"}}")
}

fn k8s_line(seq: u64) -> String {
    let log = format!(
        "2026-12-01T10:00:00.123Z INFO  [http-nio-8080-exec-7] c.e.checkout.OrderController : order {seq:010} accepted for customer 7731, 3 items, total 129.90 EUR, payment authorised by provider psp-2, shipping standard, warehouse eu-central-1b"
    );
    format!(
        "{{\"seq\":{seq},\"log\":\"{log}\",\"stream\":\"stdout\",\"time\":\"2026-12-01T10:00:00.123456789Z\",\"kubernetes\":{{\"pod_name\":\"checkout-7d9f8c6b5-x2k4p\",\"namespace_name\":\"shop\",\"pod_id\":\"6f1c2a3e-5b7d-4e8f-9a0b-1c2d3e4f5a6b\",\"labels\":{{\"app\":\"checkout\",\"pod-template-hash\":\"7d9f8c6b5\",\"version\":\"v2.14.1\",\"team\":\"payments\"}},\"annotations\":{{\"prometheus.io/scrape\":\"true\",\"prometheus.io/port\":\"9102\"}},\"host\":\"ip-10-0-12-34.eu-central-1.compute.internal\",\"container_name\":\"web\",\"docker_id\":\"4b8e2f1a9c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f\",\"container_hash\":\"registry.example.com/shop/checkout@sha256:0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0\",\"container_image\":\"registry.example.com/shop/checkout:v2.14.1\"}}}}"
    )
}

struct Variant {
    name: &'static str,
    output: fn(&Path, u16) -> String,
    /// The stand-in speaks TLS (every output but the plain-http row).
    tls: bool,
}

fn null_output(_: &Path, _: u16) -> String {
    "[OUTPUT]\n    Name    null\n    Match   *\n    workers 2\n".into()
}

fn core_output(ca: &Path, _: u16) -> String {
    format!(
        "[OUTPUT]\n    Name            kinesis_firehose\n    Match           *\n    region          us-east-1\n    delivery_stream {}\n    endpoint        127.0.0.1\n    tls.ca_file     {}\n    workers         2\n    Retry_Limit     False\n",
        STREAMS[0],
        ca.display()
    )
}

fn fanout(ca: &Path, port: u16, extra: &str) -> String {
    format!(
        "[OUTPUT]\n    Name                    firehose_fanout\n    Match                   *\n    region                  us-east-1\n    endpoint                https://127.0.0.1:{port}\n    ca_file                 {}\n    delivery_streams        {}\n    stream_bytes_per_second 1000MiB\n    workers                 2\n    Retry_Limit             False\n{extra}",
        ca.display(),
        STREAMS.join(",")
    )
}

fn fanout_sync(ca: &Path, port: u16) -> String {
    fanout(ca, port, "")
}
/// The default configuration without TLS: what TLS costs.
fn fanout_http(_: &Path, port: u16) -> String {
    format!(
        "[OUTPUT]\n    Name                    firehose_fanout\n    Match                   *\n    region                  us-east-1\n    endpoint                http://127.0.0.1:{port}\n    delivery_streams        {}\n    stream_bytes_per_second 1000MiB\n    workers                 2\n    Retry_Limit             False\n",
        STREAMS.join(",")
    )
}
fn fanout_async(ca: &Path, port: u16) -> String {
    fanout(ca, port, "    delivery_mode           async\n")
}
fn fanout_gzip(ca: &Path, port: u16) -> String {
    fanout(ca, port, "    compression             gzip\n")
}
fn fanout_zstd(ca: &Path, port: u16) -> String {
    fanout(ca, port, "    compression             zstd\n")
}

/// Whether `word` is one of the words of `name` ("sync" is not a word of "async").
fn has_word(name: &str, word: &str) -> bool {
    name.split(|c: char| !c.is_alphanumeric())
        .any(|w| w == word)
}

/// What one Fluent Bit run cost, as the process showed it.
struct Measured {
    wall: f64,
    cpu: f64,
    max_rss: u64,
    /// File-backed RSS when the RSS was largest.
    file_rss: u64,
    exit: i32,
    spawned: SystemTime,
}

/// What one Fluent Bit run cost, and what arrived.
struct Run {
    m: Measured,
    /// From the start to the last record's arrival at the stand-in: the wall time steps by
    /// whole seconds (Fluent Bit's main loop checks for its engine's end once a second),
    /// this does not.
    delivered: Option<f64>,
    lost: u64,
    duplicated: u64,
}

fn fluent_bit() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("FLUENT_BIT_BIN") {
        return Some(PathBuf::from(p));
    }
    let root = target_dir().parent()?.to_path_buf();
    let p = root.parent()?.join("shared/fluent-bit/bin/fluent-bit");
    p.exists().then_some(p)
}

fn plugin() -> PathBuf {
    // The bench profile builds the cdylib next to the CLI (target/release/deps);
    // `cargo build --release` copies it to target/release. The newer of the two: the other
    // may be left from an older tree.
    let dir = cli().parent().map(Path::to_path_buf).unwrap_or_default();
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    [
        dir.join("libfirehose_fanout.so"),
        dir.join("deps").join("libfirehose_fanout.so"),
    ]
    .into_iter()
    .filter_map(|p| modified(&p).map(|t| (t, p)))
    .max()
    .map(|(_, p)| p)
    .unwrap_or_else(|| dir.join("deps").join("libfirehose_fanout.so"))
}

fn write_input(dir: &Path, w: &Workload) -> anyhow::Result<PathBuf> {
    let path = dir.join(format!("{}.jsonl", w.name));
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path)?);
    for seq in 0..w.records {
        f.write_all((w.line)(seq).as_bytes())?;
        f.write_all(b"\n")?;
    }
    f.flush()?;
    Ok(path)
}

/// Runs Fluent Bit to the end of `input`; CPU and peak RSS from the kernel's accounting.
fn run_fluent_bit(bin: &Path, dir: &Path, input: &Path, output: &str) -> anyhow::Result<Measured> {
    let parsers = dir.join("parsers.conf");
    std::fs::write(&parsers, "[PARSER]\n    Name   json\n    Format json\n")?;
    let conf = dir.join("fluent-bit.conf");
    std::fs::write(
        &conf,
        format!(
            "[SERVICE]\n    Flush        1\n    Grace        30\n    Log_Level    {}\n    Parsers_File {}\n\n[INPUT]\n    Name              tail\n    Path              {}\n    Parser            json\n    Read_from_Head    On\n    Exit_On_Eof       On\n    Mem_Buf_Limit     64M\n    Buffer_Chunk_Size 256k\n    Buffer_Max_Size   256k\n\n{output}",
            // `ENGINE_LOG_LEVEL=debug`: each task's timing in the run's fluent-bit.log.
            std::env::var("ENGINE_LOG_LEVEL").unwrap_or_else(|_| "warn".into()),
            parsers.display(),
            input.display()
        ),
    )?;
    let log = std::fs::File::create(dir.join("fluent-bit.log"))?;
    let start = Instant::now();
    let spawned = SystemTime::now();
    let child = Command::new(bin)
        .arg("-e")
        .arg(plugin())
        .arg("-c")
        .arg(&conf)
        .env("AWS_ACCESS_KEY_ID", "AKIDENGINEBENCH")
        .env("AWS_SECRET_ACCESS_KEY", "engine-bench-secret")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/nonexistent/engine-bench")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/engine-bench")
        .env_remove("HTTPS_PROXY")
        .env_remove("https_proxy")
        .env_remove("HTTP_PROXY")
        .env_remove("http_proxy")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()?;
    let pid = child.id() as libc::pid_t;
    // Peak RSS from VmHWM, read until the process ends: wait4's ru_maxrss would also count
    // the pages the child shared with this process before its exec.
    let status_path = format!("/proc/{pid}/status");
    // Also the file-backed share (code and other mapped files) of the largest RSS seen: the
    // plugin's code is a library of its own, the core plugin's is in Fluent Bit's binary.
    let sampler = std::thread::spawn(move || {
        let (mut hwm, mut rss, mut file) = (0u64, 0u64, 0u64);
        while let Ok(s) = std::fs::read_to_string(&status_path) {
            let field = |name: &str| {
                s.lines()
                    .find(|l| l.starts_with(name))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|v| v.parse::<u64>().ok())
                    .map(|kb| kb * 1024)
            };
            if let Some(b) = field("VmHWM:") {
                hwm = hwm.max(b);
            }
            if let (Some(r), Some(f)) = (field("VmRSS:"), field("RssFile:")) {
                if r > rss {
                    (rss, file) = (r, f);
                }
            }
            if s.lines()
                .any(|l| l.starts_with("State:") && l.contains('Z'))
            {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        (hwm, file)
    });
    let mut status = 0;
    // SAFETY: an all-zero rusage is valid; wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waiting for our own child, with valid out-pointers.
    let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    anyhow::ensure!(rc == pid, "wait4 failed");
    let (max_rss, file_rss) = sampler.join().unwrap_or((0, 0));
    let wall = start.elapsed().as_secs_f64();
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    let cpu = tv(usage.ru_utime) + tv(usage.ru_stime);
    let exit = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    Ok(Measured {
        wall,
        cpu,
        max_rss,
        file_rss,
        exit,
        spawned,
    })
}

/// A Firehose record as the reader gets it: gzip and zstd (multi-member) undone.
fn decompress(rec: Vec<u8>) -> Vec<u8> {
    use std::io::Read;
    let mut out = Vec::new();
    if rec.starts_with(&[0x1f, 0x8b]) {
        let _ = flate2::read::MultiGzDecoder::new(&rec[..]).read_to_end(&mut out);
        out
    } else if rec.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        zstd::stream::decode_all(&rec[..]).unwrap_or_default()
    } else {
        rec
    }
}

/// Records lost and duplicated, and when the last one arrived.
fn count(emu: &Emulator, n: u64) -> (u64, u64, Option<SystemTime>) {
    let mut seen: BTreeMap<u64, u32> = BTreeMap::new();
    let mut last = None;
    for s in STREAMS {
        for rec in emu.records_detailed(s) {
            last = last.max(Some(rec.arrival));
            let rec = decompress(rec.data);
            for line in rec.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                if let Some(seq) = parse_seq(line) {
                    *seen.entry(seq).or_default() += 1;
                }
            }
        }
    }
    let lost = (0..n).filter(|s| !seen.contains_key(s)).count() as u64;
    let dup = seen.values().map(|&c| u64::from(c.saturating_sub(1))).sum();
    (lost, dup, last)
}

fn main() -> anyhow::Result<()> {
    let machine_at_start = print_machine(
        "issue 14: the real engine, side by side (null / kinesis_firehose / firehose_fanout)",
    );
    let Some(bin) = fluent_bit() else {
        println!("no Fluent Bit binary (set FLUENT_BIT_BIN): nothing to measure");
        return Ok(());
    };
    let identity = TlsIdentity::generate()?;
    let work = scratch("engine");
    let ca = identity.write_ca(&work)?;
    let n = |records: f64| (records * scale()) as u64;
    let workloads = [
        Workload {
            name: "small lines",
            records: n(1e6),
            line: small_line,
        },
        Workload {
            name: "Kubernetes lines",
            records: n(3e5),
            line: k8s_line,
        },
    ];
    let variants = [
        Variant {
            name: "null",
            output: null_output,
            tls: true,
        },
        Variant {
            name: "kinesis_firehose (1 stream)",
            output: core_output,
            tls: true,
        },
        Variant {
            name: "firehose_fanout (4 streams, sync)",
            output: fanout_sync,
            tls: true,
        },
        Variant {
            name: "firehose_fanout plain http",
            output: fanout_http,
            tls: false,
        },
        Variant {
            name: "firehose_fanout async",
            output: fanout_async,
            tls: true,
        },
        Variant {
            name: "firehose_fanout gzip",
            output: fanout_gzip,
            tls: true,
        },
        Variant {
            name: "firehose_fanout zstd",
            output: fanout_zstd,
            tls: true,
        },
    ];
    // `ENGINE_ONLY=sync,zstd`: only the outputs whose names have one of these words (null
    // and kinesis_firehose always run: the ratios need them).
    let only = std::env::var("ENGINE_ONLY").ok();
    let variants: Vec<&Variant> = variants
        .iter()
        .enumerate()
        .filter(|(i, v)| {
            *i < 2
                || only
                    .as_deref()
                    .is_none_or(|o| o.split(',').any(|w| has_word(v.name, w.trim())))
        })
        .map(|(_, v)| v)
        .collect();
    let mut rows = Vec::new();
    let mut raw = Vec::new();
    for (wi, w) in workloads.iter().enumerate() {
        let input_dir = work.join(format!("input-{wi}"));
        std::fs::create_dir_all(&input_dir)?;
        let input = write_input(&input_dir, w)?;
        let line_bytes = std::fs::metadata(&input)?.len() as f64 / w.records as f64;
        let mut runs: BTreeMap<&str, Vec<Run>> = BTreeMap::new();
        for round in 0..rounds() {
            for v in variants.iter() {
                let emu = Emulator::start(EmulatorConfig {
                    // The core plugin's endpoint has no port: TLS is on 443.
                    bind: if v.tls {
                        "127.0.0.1:443"
                    } else {
                        "127.0.0.1:0"
                    }
                    .parse()?,
                    streams: STREAMS.iter().map(|s| StreamSpec::new(*s)).collect(),
                    tls: v.tls.then(|| identity.clone()),
                    ..Default::default()
                })?;
                let dir = work.join(format!(
                    "run-{wi}-{round}-{}",
                    v.name.split(' ').next().unwrap_or("v")
                ));
                let _ = std::fs::remove_dir_all(&dir);
                std::fs::create_dir_all(&dir)?;
                let output = (v.output)(&ca, emu.addr().port());
                let m = run_fluent_bit(&bin, &dir, &input, &output)?;
                let (lost, duplicated, last) = if v.name == "null" {
                    (0, 0, None)
                } else {
                    count(&emu, w.records)
                };
                let delivered = last
                    .and_then(|t| t.duration_since(m.spawned).ok())
                    .map(|d| d.as_secs_f64());
                drop(emu);
                println!(
                    "  {} / {} / round {}: {:.2} s (last record in at {}), {:.2} CPU-s, {:.0} MB ({:.0} file-backed), lost {lost}, dup {duplicated}",
                    w.name,
                    v.name,
                    round + 1,
                    m.wall,
                    delivered.map_or("-".into(), |d| format!("{d:.2} s")),
                    m.cpu,
                    m.max_rss as f64 / 1e6,
                    m.file_rss as f64 / 1e6
                );
                runs.entry(v.name).or_default().push(Run {
                    m,
                    delivered,
                    lost,
                    duplicated,
                });
            }
        }
        let null_cpu: Vec<f64> = runs["null"].iter().map(|r| r.m.cpu).collect();
        let core_marg: Vec<f64> = runs["kinesis_firehose (1 stream)"]
            .iter()
            .zip(&null_cpu)
            .map(|(r, n)| r.m.cpu - n)
            .collect();
        for v in variants.iter() {
            let rs = &runs[v.name];
            let range = |f: &dyn Fn(&Run) -> f64, fmt: &dyn Fn(f64) -> String| {
                let lo = rs.iter().map(f).fold(f64::INFINITY, f64::min);
                let hi = rs.iter().map(f).fold(f64::NEG_INFINITY, f64::max);
                if (hi - lo).abs() < 1e-9 {
                    fmt(lo)
                } else {
                    format!("{}–{}", fmt(lo), fmt(hi))
                }
            };
            let marg: Vec<f64> = rs.iter().zip(&null_cpu).map(|(r, n)| r.m.cpu - n).collect();
            let ratio: Vec<f64> = marg
                .iter()
                .zip(&core_marg)
                .map(|(m, c)| m / c.max(1e-9))
                .collect();
            let ratio_text = if v.name == "null" || v.name.starts_with("kinesis") {
                "-".to_string()
            } else {
                let lo = ratio.iter().copied().fold(f64::INFINITY, f64::min);
                let hi = ratio.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                format!("{lo:.2}–{hi:.2}")
            };
            rows.push(vec![
                format!("{} ({line_bytes:.0} B)", w.name),
                v.name.to_string(),
                range(&|r| r.m.wall, &|x| format!("{x:.1} s")),
                if v.name == "null" {
                    "-".into()
                } else {
                    range(&|r| r.delivered.unwrap_or(f64::NAN), &|x| {
                        format!("{x:.2} s")
                    })
                },
                range(&|r| r.m.cpu, &|x| format!("{x:.2}")),
                if v.name == "null" {
                    "-".into()
                } else {
                    let lo = marg.iter().copied().fold(f64::INFINITY, f64::min);
                    let hi = marg.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    format!("{lo:.2}–{hi:.2}")
                },
                ratio_text,
                range(&|r| r.m.max_rss as f64 / 1e6, &|x| format!("{x:.0} MB")),
                range(&|r| r.m.file_rss as f64 / 1e6, &|x| format!("{x:.0} MB")),
                int(rs.iter().map(|r| r.lost).sum()),
                int(rs.iter().map(|r| r.duplicated).sum()),
                rs.iter()
                    .map(|r| r.m.exit.to_string())
                    .collect::<Vec<_>>()
                    .join(","),
            ]);
            raw.push(json!({
                "workload": w.name, "variant": v.name, "line_bytes": line_bytes,
                "runs": rs.iter().map(|r| json!({"wall": r.m.wall, "delivered": r.delivered, "cpu": r.m.cpu, "max_rss": r.m.max_rss, "file_rss": r.m.file_rss,
                    "lost": r.lost, "duplicated": r.duplicated, "exit": r.m.exit})).collect::<Vec<_>>(),
            }));
        }
    }
    emit_table(
        "engine",
        &[
            "workload",
            "output",
            "wall",
            "last record in",
            "CPU-s",
            "marginal CPU-s (− null)",
            "marginal ÷ kinesis_firehose",
            "peak RSS",
            "of it file-backed",
            "lost",
            "duplicated",
            "exit",
        ],
        &rows,
    );
    let path = write_json(
        "engine.json",
        &json!({"machine": machine_at_start, "rounds": rounds(), "scale": scale(), "results": raw}),
    )?;
    println!("raw results: {}", path.display());
    Ok(())
}
