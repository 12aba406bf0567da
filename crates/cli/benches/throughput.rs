//! Issue 5, scenario 5: fast and cheap.
//!
//! replay against its in-process emulator without quotas, the plugin's scheduler opened
//! up (`stream_bytes_per_second=1000MiB`, `stream_records_per_second=10M`,
//! `stream_requests_per_second=100k`), ~100-byte records, 2 flush workers; for 1 and 4
//! streams × aggregation on/off × compression none/zstd. Reported: records/s end to end
//! (target ≥ 250,000), CPU seconds per million records (plugin + host, as replay
//! reports it, and the whole process), RSS right after the plugin's start, peak RSS and
//! the growth between them (target ≤ 20 MB), billed/raw bytes from the plugin's closing
//! log line (target ≤ 1.01 with aggregation).
//!
//! Chunks: replay's default (at most 2,000 records, so ~200 KB here) and, with
//! aggregation, Fluent Bit-sized chunks of up to 2 MB (`--chunk-records 20000`), since
//! in sync mode an aggregate never spans two chunks and its size decides the 5 KB
//! rounding; and small chunks in async mode, which packs buffered chunks together.
//! Then memory at the target rate: `--rate 250000` for 40 s (4 streams, aggregation on,
//! a separate `emulate` process), with both chunk sizes: RSS after init, at 5 s, 20 s,
//! the end, the peak (RSS every 50 ms to target/bench-results/throughput-rss.csv).
//!
//! `cargo bench -p firehose-fanout-cli --bench throughput`

mod common;

use std::fmt::Write as _;

use common::*;

const RECORD: u64 = 100;

struct Config {
    streams: usize,
    aggregation: bool,
    zstd: bool,
    chunk_records: u64,
    records: u64,
    rate: Option<f64>,
    /// `delivery_mode async` (records/s is then the intake, bounded by an 8 MiB buffer and
    /// an 8 MiB `Mem_Buf_Limit` in the host).
    asynchronous: bool,
}

impl Config {
    fn name(&self) -> String {
        format!(
            "{} stream{}, aggregation {}, {}, chunks ≤ {} records{}",
            self.streams,
            if self.streams == 1 { "" } else { "s" },
            if self.aggregation { "on" } else { "off" },
            if self.zstd { "zstd" } else { "none" },
            int(self.chunk_records),
            if self.asynchronous { ", async" } else { "" }
        )
    }
    fn args(&self) -> Vec<String> {
        let mut a = args![
            "--generate",
            self.records,
            "--record-size",
            RECORD,
            "--emulate-streams",
            self.streams,
            "--chunk-records",
            self.chunk_records,
            "-p",
            "stream_bytes_per_second=1000MiB",
            "-p",
            "stream_records_per_second=10M",
            "-p",
            "stream_requests_per_second=100k",
            "-p",
            format!(
                "aggregation={}",
                if self.aggregation { "on" } else { "off" }
            ),
            "-p",
            format!("compression={}", if self.zstd { "zstd" } else { "none" }),
            "--retry-limit",
            "no_limits",
            "-v",
        ];
        if let Some(r) = self.rate {
            a.extend(args!["--rate", r]);
        }
        if self.asynchronous {
            // Fluent Bit keeps what the full buffer refuses (FLB_RETRY) up to its
            // Mem_Buf_Limit, then pauses the input.
            a.extend(args![
                "-p",
                "delivery_mode=async",
                "-p",
                "buffer_max_bytes=8MiB",
                "--mem-buf-limit",
                "8MiB"
            ]);
        }
        a
    }
}

fn run(c: &Config) -> anyhow::Result<(Vec<String>, Value)> {
    let load_before = load_text();
    let r = replay(&c.args(), true)?;
    let load_after = load_text();
    let acked = r.u("records_acked");
    let rps = r.f("records_per_second");
    let (_, raw, billed) = r.stopping_line().unwrap_or((0, 0, 0));
    let delivered = r.u("delivered_bytes");
    let init = r.rss_after_init().unwrap_or(0);
    let peak = r.u("peak_rss_bytes").max(r.hwm);
    let growth = peak.saturating_sub(init);
    let cpu_total_per_m = r.f("cpu_seconds") * 1e6 / acked.max(1) as f64;
    let billed_ratio = billed as f64 / raw.max(1) as f64;
    if let Some(e) = r.summary.get("billed_bytes").and_then(Value::as_u64) {
        if e.abs_diff(billed) > billed / 1000 {
            println!(
                "note: {}: plugin says billed {billed} B, the emulator {e} B",
                c.name()
            );
        }
    }
    let row = vec![
        c.name(),
        int(acked),
        format!("{:.1} s", r.f("elapsed_seconds")),
        int(rps.round() as u64),
        format!("{:.2}", r.f("cpu_seconds_per_million_records")),
        format!("{cpu_total_per_m:.2}"),
        mb(init as f64),
        mb(peak as f64),
        mb(growth as f64),
        format!("{billed_ratio:.4}"),
        format!("{:.4}", billed as f64 / delivered.max(1) as f64),
        format!("{load_before} → {load_after}"),
    ];
    let v = json!({
        "config": c.name(),
        "streams": c.streams,
        "aggregation": c.aggregation,
        "compression": if c.zstd { "zstd" } else { "none" },
        "chunk_records": c.chunk_records,
        "delivery_mode": if c.asynchronous { "async" } else { "sync" },
        "records": c.records,
        "records_acked": acked,
        "records_per_second": rps,
        "cpu_seconds_per_million_plugin_host": r.f("cpu_seconds_per_million_records"),
        "cpu_seconds_per_million_process": cpu_total_per_m,
        "rss_after_init_bytes": init,
        "peak_rss_bytes": peak,
        "rss_growth_bytes": growth,
        "raw_bytes": raw,
        "billed_bytes": billed,
        "delivered_bytes": delivered,
        "billed_over_raw": billed_ratio,
        // The emulator's own count (5 KB units of what it accepted), when it has one.
        "billed_bytes_emulator": r.summary.get("billed_bytes").cloned(),
        "load_before": load_before,
        "load_after": load_after,
        "replay": r.summary,
        "rss_samples": r.rss.iter().map(|(t, b)| json!([t - r.spawned, b])).collect::<Vec<_>>(),
    });
    Ok((row, v))
}

fn main() -> anyhow::Result<()> {
    let machine_at_start =
        print_machine("issue 5 / scenario 5: ~100-byte records, unthrottled, in-process emulator");
    let mut configs = Vec::new();
    for streams in [1, 4] {
        for aggregation in [true, false] {
            for zstd in [false, true] {
                // Per-record zstd without aggregation is far slower (see docs/benchmarks.md).
                let records = match (aggregation, zstd) {
                    (true, _) => 4_000_000,
                    (false, false) => 2_000_000,
                    (false, true) => 300_000,
                };
                configs.push(Config {
                    streams,
                    aggregation,
                    zstd,
                    chunk_records: 2000,
                    records,
                    rate: None,
                    asynchronous: false,
                });
            }
        }
    }
    for streams in [1, 4] {
        for zstd in [false, true] {
            configs.push(Config {
                streams,
                aggregation: true,
                zstd,
                chunk_records: 20_000,
                records: 4_000_000,
                rate: None,
                asynchronous: false,
            });
        }
    }
    // Small chunks in async mode: buffered chunks are packed so that they share aggregates.
    for streams in [1, 4] {
        configs.push(Config {
            streams,
            aggregation: true,
            zstd: false,
            chunk_records: 2000,
            records: 4_000_000,
            rate: None,
            asynchronous: true,
        });
    }
    let headers = [
        "configuration",
        "records",
        "elapsed",
        "records/s",
        "CPU s/M (plugin+host)",
        "CPU s/M (process)",
        "RSS after init MB",
        "peak RSS MB",
        "growth MB",
        "billed/raw",
        "billed/delivered",
        "load before → after",
    ];
    let mut rows = Vec::new();
    let mut results = Vec::new();
    for c in &configs {
        let (row, v) = run(c)?;
        println!("{}", row.join(" | "));
        rows.push(row);
        results.push(v);
    }
    println!();
    emit_table("throughput", &headers, &rows);

    // Memory at the target rate: 250,000 records/s for 40 s, RSS every 50 ms, against a
    // separate `emulate` process so that the replay process holds only the host (its
    // chunk queue) and the plugin. The third run caps glibc's malloc arenas and the fourth
    // fixes its mmap threshold, to show how much of the peak is freed memory that glibc
    // keeps.
    let mut mem_rows = Vec::new();
    let mut long_json = Vec::new();
    let mut csv = String::from("run,elapsed_s,rss_bytes\n");
    let emu = Emu::start(args!["--streams", 4, "--keep-records", 0])?;
    let names = emu.streams.clone();
    for (label, chunk_records, env) in [
        ("chunks ≤ 2,000 records (~200 KB)", 2000u64, None),
        ("chunks ≤ 20,000 records (~2 MB)", 20_000, None),
        (
            "chunks ≤ 20,000 records, MALLOC_ARENA_MAX=2",
            20_000,
            Some(("MALLOC_ARENA_MAX", "2")),
        ),
        (
            "chunks ≤ 20,000 records, MALLOC_MMAP_THRESHOLD_=131072",
            20_000,
            Some(("MALLOC_MMAP_THRESHOLD_", "131072")),
        ),
    ] {
        let mut a = args![
            "--generate",
            10_000_000u64,
            "--record-size",
            RECORD,
            "--rate",
            250_000,
            "--chunk-records",
            chunk_records,
            "-p",
            "stream_bytes_per_second=1000MiB",
            "-p",
            "stream_records_per_second=10M",
            "-p",
            "stream_requests_per_second=100k",
            "-p",
            "aggregation=on",
            "--retry-limit",
            "no_limits",
            "-v",
        ];
        a.extend(endpoint_props(&emu, &names));
        let env: Vec<(&str, &str)> = env.into_iter().collect();
        let load_before = load_text();
        let r = replay_env(&a, true, &env)?;
        let load_after = load_text();
        for (t, b) in &r.rss {
            let _ = writeln!(csv, "\"{label}\",{:.2},{b}", t - r.spawned);
        }
        let init = r.rss_after_init().unwrap_or(0);
        let peak = r.u("peak_rss_bytes").max(r.hwm);
        let at5 = r.rss_at(5.0).unwrap_or(0);
        let at20 = r.rss_at(20.0).unwrap_or(0);
        let last = r.rss.last().map_or(0, |x| x.1);
        mem_rows.push(vec![
            format!("4 streams, aggregation on, {label}"),
            int(r.u("records_acked")),
            int(r.f("records_per_second").round() as u64),
            format!("{:.1} s", r.f("elapsed_seconds")),
            mb(init as f64),
            mb(at5 as f64),
            mb(at20 as f64),
            mb(last as f64),
            mb(peak as f64),
            mb(peak.saturating_sub(init) as f64),
            format!("{:+.2}", (last as f64 - at5 as f64) / 1e6),
            format!("{load_before} → {load_after}"),
        ]);
        long_json.push(json!({
            "config": label,
            "chunk_records": chunk_records,
            "rate": 250_000,
            "records_per_second": r.f("records_per_second"),
            "rss_after_init_bytes": init,
            "rss_at_5s": at5,
            "rss_at_20s": at20,
            "rss_last": last,
            "peak_rss_bytes": peak,
            "growth_bytes": peak.saturating_sub(init),
            "drift_5s_to_end_bytes": last as f64 - at5 as f64,
            "load_before": load_before,
            "load_after": load_after,
            "replay": r.summary,
        }));
    }
    emu.stop();
    println!("memory at 250,000 records/s for 40 s (4 streams, aggregation on, none; emulator in its own process):");
    emit_table(
        "throughput-memory",
        &[
            "configuration",
            "records",
            "records/s",
            "elapsed",
            "RSS after init MB",
            "at 5 s",
            "at 20 s",
            "at end",
            "peak",
            "growth (peak − init)",
            "drift 5 s → end",
            "load before → after",
        ],
        &mem_rows,
    );
    write_text("throughput-rss.csv", &csv)?;

    let agg_none: Vec<&Value> = results
        .iter()
        .filter(|v| v["aggregation"] == true && v["compression"] == "none")
        .collect();
    println!(
        "targets: ≥ 250,000 records/s: {} of {} configurations; growth ≤ 20 MB (peak − after init, unpaced runs): {} of {}; at 250,000 records/s: {} of {}; billed/raw ≤ 1.01 with aggregation (compression none): {} of {}",
        results.iter().filter(|v| v["records_per_second"].as_f64().unwrap_or(0.0) >= 250_000.0).count(),
        results.len(),
        results.iter().filter(|v| v["rss_growth_bytes"].as_f64().unwrap_or(1e12) <= 20e6).count(),
        results.len(),
        long_json.iter().filter(|v| v["growth_bytes"].as_f64().unwrap_or(1e12) <= 20e6).count(),
        long_json.len(),
        agg_none.iter().filter(|v| v["billed_over_raw"].as_f64().unwrap_or(9.0) <= 1.01).count(),
        agg_none.len(),
    );
    let path = write_json(
        "throughput.json",
        &json!({"machine": machine_at_start, "runs": results, "memory_runs": long_json}),
    )?;
    println!("raw results: {}", path.display());
    Ok(())
}
