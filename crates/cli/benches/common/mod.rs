//! Shared harness of the end-to-end benchmarks (crates/cli/benches/*.rs): runs the
//! `firehose-fanout` CLI (an `emulate` process and `replay` processes, only on 127.0.0.1),
//! samples the emulator's `GET /stats`, checks delivered records by their sequence
//! numbers in the emulator's S3-like output folder, prints tables and writes the raw
//! results to `target/bench-results/`.
//!
//! Every bench is a plain binary (`harness = false`): `cargo bench -p firehose-fanout-cli
//! --bench <name>`.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context, Result};
pub use firehose_emulator::{Stats, StreamStats};
pub use serde_json::{json, Value};

pub const KIB: f64 = 1024.0;
pub const MIB: f64 = 1024.0 * 1024.0;

/// The CLI built for this bench (same profile).
pub fn cli() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_firehose-fanout"))
}

/// `target/` of the workspace: the CLI lives in `target/<profile>/`.
pub fn target_dir() -> PathBuf {
    let exe = cli();
    exe.parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("target"))
}

/// `target/bench-results/` (created).
pub fn results_dir() -> PathBuf {
    let d = target_dir().join("bench-results");
    std::fs::create_dir_all(&d).expect("cannot create target/bench-results");
    d
}

/// A scratch folder below `target/bench-results/tmp/` (emptied first).
pub fn scratch(name: &str) -> PathBuf {
    let d = results_dir().join("tmp").join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("cannot create a scratch folder");
    d
}

pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

/// The 1, 5 and 15 minute load averages.
pub fn loadavg() -> [f64; 3] {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut it = text.split_whitespace().map(|v| v.parse().unwrap_or(0.0));
    [
        it.next().unwrap_or(0.0),
        it.next().unwrap_or(0.0),
        it.next().unwrap_or(0.0),
    ]
}

pub fn load_text() -> String {
    let l = loadavg();
    format!("{:.2} {:.2} {:.2}", l[0], l[1], l[2])
}

/// Cores, CPU model, kernel, load: printed above every table and stored with the results.
pub fn machine() -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    json!({
        "cores": cores,
        "cpu": model,
        "load_at_start": loadavg(),
        "date_unix": unix_now().round(),
        "niceness": niceness(),
        "git": git_state(),
    })
}

/// The commit the workspace is at and whether the plugin's sources differ from it.
fn git_state() -> String {
    let root = target_dir()
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let run = |args: &[&str]| {
        Command::new("git")
            .arg("-C")
            .arg(&root)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let head = run(&["rev-parse", "--short", "HEAD"]).unwrap_or_else(|| "?".into());
    // What the plugin, the CLI and the emulator are built from (not these benches).
    let dirty = run(&[
        "status",
        "--porcelain",
        "--",
        "src",
        "crates/cli/src",
        "crates/emulator",
        "crates/flb-host",
    ])
    .is_some_and(|s| !s.is_empty());
    format!(
        "{head}{}",
        if dirty { " + uncommitted changes" } else { "" }
    )
}

fn niceness() -> i32 {
    // SAFETY: getpriority has no memory preconditions; errno is not checked (0 is fine).
    unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) }
}

/// Prints the title and the machine; returns [`machine`] as it was at the start.
pub fn print_machine(title: &str) -> Value {
    let m = machine();
    println!("== {title}");
    println!(
        "machine: {} cores ({}), load average {} at start, nice {}; tree {}",
        m["cores"],
        m["cpu"].as_str().unwrap_or("?"),
        load_text(),
        m["niceness"],
        m["git"].as_str().unwrap_or("?")
    );
    m
}

// ----- HTTP to the emulator ---------------------------------------------------------

/// One HTTP/1.1 request over plain TCP (`Connection: close`): status and body.
pub fn http(
    endpoint: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> Result<(u16, Vec<u8>)> {
    firehose_emulator::client::request(
        endpoint,
        method,
        path,
        &[
            ("Accept", "application/json"),
            ("Content-Type", "application/json"),
        ],
        body.unwrap_or("").as_bytes(),
    )
    .with_context(|| format!("{method} {path} at {endpoint}"))
}

// ----- an `emulate` process ---------------------------------------------------------

/// `firehose-fanout emulate --port 0 ...` in its own process.
pub struct Emu {
    child: Child,
    pub endpoint: String,
    pub streams: Vec<String>,
}

impl Emu {
    /// Starts the emulator with these extra arguments and waits for its banner.
    pub fn start(args: Vec<String>) -> Result<Emu> {
        let mut child = Command::new(cli())
            .arg("emulate")
            .args(["--port", "0"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("cannot start firehose-fanout emulate")?;
        let stdout = child.stdout.take().expect("piped");
        let mut lines = BufReader::new(stdout).lines();
        let banner = lines
            .next()
            .ok_or_else(|| anyhow!("the emulator printed nothing"))??;
        let endpoint = banner
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .ok_or_else(|| anyhow!("no endpoint in the banner: {banner}"))?
            .to_string();
        let streams = banner
            .split("(streams: ")
            .nth(1)
            .and_then(|r| r.split([';', ')']).next())
            .map(|s| s.split(", ").map(str::to_string).collect())
            .unwrap_or_default();
        // Keep draining stdout so the emulator never blocks on it.
        std::thread::spawn(move || for _ in lines {});
        Ok(Emu {
            child,
            endpoint,
            streams,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn stats(&self) -> Result<Stats> {
        let (status, body) = http(&self.endpoint, "GET", "/stats", None)?;
        if status != 200 {
            bail!("GET /stats answered {status}");
        }
        serde_json::from_slice(&body).context("GET /stats: not the emulator's Stats")
    }

    /// An admin call; fails unless it answers 200.
    pub fn admin(&self, method: &str, path: &str, body: Option<&str>) -> Result<Value> {
        let (status, b) = http(&self.endpoint, method, path, body)?;
        let v: Value = serde_json::from_slice(&b).unwrap_or(Value::Null);
        if status != 200 {
            bail!("{method} {path} answered {status}: {v}");
        }
        Ok(v)
    }

    /// Writes the buffered output objects now.
    pub fn flush(&self) -> Result<()> {
        self.admin("POST", "/admin/flush", None).map(|_| ())
    }

    /// SIGTERM, then waits (kills after 10 s).
    pub fn stop(mut self) {
        stop_child(&mut self.child);
    }
}

impl Drop for Emu {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            stop_child(&mut self.child);
        }
    }
}

fn stop_child(child: &mut Child) {
    // SAFETY: kill(2) on the id of a child we started and have not reaped yet.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Polls the emulator's `/stats` every `period` on a thread, keeping each snapshot with
/// the unix time it was taken.
pub struct StatsSampler {
    stop: Arc<AtomicBool>,
    handle: std::thread::JoinHandle<Vec<(f64, Stats)>>,
}

impl StatsSampler {
    pub fn start(endpoint: &str, period: Duration) -> StatsSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let (s, ep) = (stop.clone(), endpoint.to_string());
        let handle = std::thread::spawn(move || {
            let mut out = Vec::new();
            let t0 = Instant::now();
            let mut n = 0u32;
            while !s.load(Ordering::Relaxed) {
                if let Ok((200, body)) = http(&ep, "GET", "/stats", None) {
                    if let Ok(st) = serde_json::from_slice::<Stats>(&body) {
                        out.push((unix_now(), st));
                    }
                }
                n += 1;
                let next = t0 + period * n;
                while Instant::now() < next && !s.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(10).min(period));
                }
            }
            out
        });
        StatsSampler { stop, handle }
    }

    pub fn finish(self) -> Vec<(f64, Stats)> {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().unwrap_or_default()
    }
}

/// Accepted bytes per stream per unix second, merged over snapshots (a stream deleted
/// during the run keeps what its last snapshot showed).
pub fn merged_series(snapshots: &[&Stats]) -> BTreeMap<String, BTreeMap<u64, (u64, u64)>> {
    let mut out: BTreeMap<String, BTreeMap<u64, (u64, u64)>> = BTreeMap::new();
    for st in snapshots {
        for (name, s) in &st.streams {
            let m = out.entry(name.clone()).or_default();
            for p in &s.series {
                let e = m.entry(p.t).or_insert((0, 0));
                // A later snapshot of the same second has at least as much.
                if p.bytes >= e.0 {
                    *e = (p.bytes, p.records);
                }
            }
        }
    }
    out
}

/// Sum of a per-stream counter over all streams.
pub fn total(st: &Stats, f: fn(&StreamStats) -> u64) -> u64 {
    st.streams.values().map(f).sum()
}

// ----- `replay` processes -----------------------------------------------------------

/// What a finished `replay --json` left.
#[derive(Debug, Clone)]
pub struct ReplayOut {
    pub summary: Value,
    pub stderr: Vec<(f64, String)>,
    pub exit_code: i32,
    /// Unix times: spawned, "started:" line of the plugin (with -v), exited.
    pub spawned: f64,
    pub plugin_started: Option<f64>,
    /// VmRSS read the moment the plugin's "started:" line arrived (before replay's
    /// producer has done much: replay starts it right after printing that line).
    pub rss_at_started: Option<u64>,
    pub exited: f64,
    /// (unix time, VmRSS bytes) samples, when asked for.
    pub rss: Vec<(f64, u64)>,
    /// VmHWM at the last sample.
    pub hwm: u64,
}

impl ReplayOut {
    pub fn f(&self, key: &str) -> f64 {
        self.summary[key].as_f64().unwrap_or(0.0)
    }
    pub fn u(&self, key: &str) -> u64 {
        self.summary[key].as_u64().unwrap_or(0)
    }
    /// The plugin's closing line: (records, bytes, billed bytes).
    pub fn stopping_line(&self) -> Option<(u64, u64, u64)> {
        let l = self
            .stderr
            .iter()
            .rev()
            .find(|(_, l)| l.contains("stopping: "))?;
        let rest = l.1.split("stopping: ").nth(1)?;
        let nums: Vec<u64> = rest
            .split(|c: char| !c.is_ascii_digit())
            .filter(|s| !s.is_empty())
            .take(3)
            .filter_map(|s| s.parse().ok())
            .collect();
        (nums.len() == 3).then(|| (nums[0], nums[1], nums[2]))
    }
    /// RSS right after the plugin said "started", or the first sample after it.
    pub fn rss_after_init(&self) -> Option<u64> {
        if self.rss_at_started.is_some() {
            return self.rss_at_started;
        }
        let at = self.plugin_started.unwrap_or(self.spawned);
        self.rss
            .iter()
            .find(|(t, _)| *t >= at)
            .or(self.rss.first())
            .map(|x| x.1)
    }
    pub fn rss_max(&self) -> u64 {
        self.rss.iter().map(|x| x.1).max().unwrap_or(0)
    }
    /// The RSS sample nearest `secs` after the spawn.
    pub fn rss_at(&self, secs: f64) -> Option<u64> {
        let t = self.spawned + secs;
        self.rss
            .iter()
            .min_by(|a, b| (a.0 - t).abs().total_cmp(&(b.0 - t).abs()))
            .map(|x| x.1)
    }
}

/// Lines of a replay's stderr with their time, and (time, VmRSS) of its "started:" line.
type StderrLines = (Vec<(f64, String)>, Option<(f64, Option<u64>)>);
/// Stop flag and thread of the RSS sampler: (time, VmRSS) samples and the last VmHWM.
type RssSampler = (
    Arc<AtomicBool>,
    std::thread::JoinHandle<(Vec<(f64, u64)>, u64)>,
);

pub struct ReplayProc {
    child: Child,
    spawned: f64,
    stdout: std::thread::JoinHandle<String>,
    stderr: std::thread::JoinHandle<StderrLines>,
    rss: Option<RssSampler>,
}

fn proc_status(pid: u32, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = text.lines().find(|l| l.starts_with(key))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Starts `firehose-fanout replay ARGS --json --no-progress`; samples VmRSS every 50 ms
/// when `sample_rss`.
pub fn spawn_replay(args: &[String], sample_rss: bool) -> Result<ReplayProc> {
    spawn_replay_env(args, sample_rss, &[])
}

/// [`spawn_replay`] with extra environment variables.
pub fn spawn_replay_env(
    args: &[String],
    sample_rss: bool,
    env: &[(&str, &str)],
) -> Result<ReplayProc> {
    let spawned = unix_now();
    let mut child = Command::new(cli())
        .envs(env.iter().copied())
        .arg("replay")
        .args(args)
        .args(["--json", "--no-progress"])
        .env("AWS_ACCESS_KEY_ID", "bench")
        .env("AWS_SECRET_ACCESS_KEY", "bench")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot start firehose-fanout replay")?;
    let mut out = child.stdout.take().expect("piped");
    let err = child.stderr.take().expect("piped");
    let stdout = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let pid = child.id();
    let stderr = std::thread::spawn(move || {
        let mut lines = Vec::new();
        let mut started = None;
        for l in BufReader::new(err).lines().map_while(|l| l.ok()) {
            let t = unix_now();
            if started.is_none() && l.contains("] started: ") {
                started = Some((t, proc_status(pid, "VmRSS:")));
            }
            lines.push((t, l));
        }
        (lines, started)
    });
    let rss = sample_rss.then(|| {
        let stop = Arc::new(AtomicBool::new(false));
        let (s, pid) = (stop.clone(), child.id());
        let h = std::thread::spawn(move || {
            let mut v = Vec::new();
            let mut hwm = 0;
            while !s.load(Ordering::Relaxed) {
                match proc_status(pid, "VmRSS:") {
                    Some(r) => v.push((unix_now(), r)),
                    None if !v.is_empty() => break,
                    None => {}
                }
                if let Some(h) = proc_status(pid, "VmHWM:") {
                    hwm = h;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            (v, hwm)
        });
        (stop, h)
    });
    Ok(ReplayProc {
        child,
        spawned,
        stdout,
        stderr,
        rss,
    })
}

impl ReplayProc {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn wait(mut self) -> Result<ReplayOut> {
        let status = self.child.wait()?;
        let exited = unix_now();
        let (rss, hwm) = match self.rss {
            Some((stop, h)) => {
                stop.store(true, Ordering::Relaxed);
                h.join().unwrap_or_default()
            }
            None => (Vec::new(), 0),
        };
        let stdout = self.stdout.join().unwrap_or_default();
        let (stderr, started) = self.stderr.join().unwrap_or_default();
        let summary: Value = serde_json::from_str(&stdout).map_err(|e| {
            let tail: Vec<&str> = stderr.iter().rev().take(10).map(|x| x.1.as_str()).collect();
            anyhow!("replay printed no JSON summary ({e}); exit {status}; stderr tail: {tail:?}")
        })?;
        Ok(ReplayOut {
            summary,
            stderr,
            exit_code: status.code().unwrap_or(-1),
            spawned: self.spawned,
            plugin_started: started.map(|s| s.0),
            rss_at_started: started.and_then(|s| s.1),
            exited,
            rss,
            hwm,
        })
    }
}

pub fn replay(args: &[String], sample_rss: bool) -> Result<ReplayOut> {
    spawn_replay(args, sample_rss)?.wait()
}

pub fn replay_env(args: &[String], sample_rss: bool, env: &[(&str, &str)]) -> Result<ReplayOut> {
    spawn_replay_env(args, sample_rss, env)?.wait()
}

/// `["a", "b"]` from string slices and formatted values alike.
#[macro_export]
macro_rules! args {
    ($($a:expr),* $(,)?) => { vec![$($a.to_string()),*] };
}

// ----- the emulator's output folder -------------------------------------------------

/// One delivered log line found in the output folder.
pub struct Line<'a> {
    pub stream: &'a str,
    /// Unix second of the object's first record (from the object's name).
    pub object_time: u64,
    /// Length with the newline.
    pub len: usize,
    /// `seq` of a generated record.
    pub seq: Option<u64>,
    /// The line itself (for other keys than `seq`).
    pub raw: &'a [u8],
}

/// `<stream>-<version>-YYYY-MM-DD-HH-MM-SS-<id>` → unix seconds.
fn object_time(stream: &str, name: &str) -> Option<u64> {
    let rest = name.strip_prefix(stream)?.strip_prefix('-')?;
    let f: Vec<i64> = rest
        .split('-')
        .skip(1)
        .take(6)
        .map(|v| v.parse().ok())
        .collect::<Option<_>>()?;
    if f.len() < 6 {
        return None;
    }
    let days =
        civil_date::days_from_civil(f[0], u32::try_from(f[1]).ok()?, u32::try_from(f[2]).ok()?);
    Some((days * 86_400 + f[3] * 3600 + f[4] * 60 + f[5]) as u64)
}

fn files_below(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        let hidden = p
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'));
        if hidden {
            continue;
        }
        if p.is_dir() {
            files_below(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// Calls `f` for every log line of every object below `dir` (`<dir>/<stream>/...`).
/// Returns (objects, lines).
pub fn scan_output(dir: &Path, mut f: impl FnMut(&Line<'_>)) -> Result<(u64, u64)> {
    let mut files = Vec::new();
    files_below(dir, &mut files);
    let (mut objects, mut lines) = (0, 0);
    for path in files {
        let rel = path.strip_prefix(dir).unwrap_or(&path);
        let stream = rel
            .components()
            .next()
            .and_then(|c| c.as_os_str().to_str())
            .unwrap_or("")
            .to_string();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let t = object_time(&stream, name).unwrap_or(0);
        let data =
            std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        objects += 1;
        for l in data.split_inclusive(|b| *b == b'\n') {
            if l == b"\n" {
                continue;
            }
            lines += 1;
            f(&Line {
                stream: &stream,
                object_time: t,
                len: l.len(),
                seq: parse_seq(l),
                raw: l,
            });
        }
    }
    Ok((objects, lines))
}

/// `{"seq":123,...` → 123.
pub fn parse_seq(line: &[u8]) -> Option<u64> {
    let rest = line.strip_prefix(b"{\"seq\":")?;
    let end = rest.iter().position(|b| !b.is_ascii_digit())?;
    std::str::from_utf8(&rest[..end]).ok()?.parse().ok()
}

/// How many times each sequence number `0..n` arrived: (lost, duplicated, unexpected).
#[derive(Debug, Clone, Default)]
pub struct SeqCount {
    counts: Vec<u8>,
    pub unexpected: u64,
}

impl SeqCount {
    pub fn new(n: u64) -> SeqCount {
        SeqCount {
            counts: vec![0; n as usize],
            unexpected: 0,
        }
    }
    pub fn add(&mut self, seq: Option<u64>) {
        match seq.and_then(|s| self.counts.get_mut(s as usize)) {
            Some(c) => *c = c.saturating_add(1),
            None => self.unexpected += 1,
        }
    }
    pub fn lost(&self) -> u64 {
        self.counts.iter().filter(|c| **c == 0).count() as u64
    }
    pub fn duplicated(&self) -> u64 {
        self.counts
            .iter()
            .map(|c| u64::from(c.saturating_sub(1)))
            .sum()
    }
    pub fn delivered(&self) -> u64 {
        self.counts.iter().map(|c| u64::from(*c)).sum()
    }
}

// ----- figures and tables ------------------------------------------------------------

/// Jain's fairness index: (Σx)² / (n·Σx²); 1 is perfectly fair.
pub fn jain(xs: &[f64]) -> f64 {
    let s: f64 = xs.iter().sum();
    let s2: f64 = xs.iter().map(|x| x * x).sum();
    if s2 == 0.0 {
        return 0.0;
    }
    s * s / (xs.len() as f64 * s2)
}

/// A text table: the first column left-aligned, the rest right-aligned.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let n = headers.len();
    let mut w: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate().take(n) {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let mut t = String::new();
    let line = |t: &mut String, cells: Vec<&str>| {
        for (i, c) in cells.iter().enumerate() {
            let pad = w[i] - c.chars().count();
            if i == 0 {
                let _ = write!(t, "{c}{}", " ".repeat(pad));
            } else {
                let _ = write!(t, "  {}{c}", " ".repeat(pad));
            }
        }
        t.push('\n');
    };
    line(&mut t, headers.to_vec());
    let dashes: Vec<String> = w.iter().map(|n| "-".repeat(*n)).collect();
    line(&mut t, dashes.iter().map(String::as_str).collect());
    for r in rows {
        line(&mut t, r.iter().map(String::as_str).collect());
    }
    t
}

/// The same table as Markdown (for docs/benchmarks.md).
pub fn markdown(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut t = format!("| {} |\n", headers.join(" | "));
    let _ = writeln!(
        t,
        "|{}",
        headers
            .iter()
            .enumerate()
            .map(|(i, _)| if i == 0 { "---|" } else { "---:|" })
            .collect::<String>()
    );
    for r in rows {
        let _ = writeln!(t, "| {} |", r.join(" | "));
    }
    t
}

/// Prints the table (and its Markdown form to `target/bench-results/<name>.md`).
pub fn emit_table(name: &str, headers: &[&str], rows: &[Vec<String>]) {
    print!("{}", table(headers, rows));
    let path = results_dir().join(format!("{name}.md"));
    let _ = std::fs::write(path, markdown(headers, rows));
}

pub fn write_json(name: &str, v: &Value) -> Result<PathBuf> {
    let path = results_dir().join(name);
    std::fs::write(&path, serde_json::to_string_pretty(v)?)?;
    Ok(path)
}

pub fn write_text(name: &str, text: &str) -> Result<PathBuf> {
    let path = results_dir().join(name);
    std::fs::write(&path, text)?;
    Ok(path)
}

pub fn pct(x: f64) -> String {
    format!("{:.1} %", x * 100.0)
}

pub fn mb(bytes: f64) -> String {
    format!("{:.2}", bytes / 1e6)
}

pub fn mib(bytes: f64) -> String {
    format!("{:.2}", bytes / MIB)
}

pub fn met(ok: bool) -> String {
    if ok { "met" } else { "MISSED" }.to_string()
}

/// `1234567` → `1,234,567`.
pub fn int(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Sleeps until the unix time `t`.
pub fn sleep_until(t: f64) {
    let now = unix_now();
    if t > now {
        std::thread::sleep(Duration::from_secs_f64(t - now));
    }
}

/// Common `replay` arguments to point it at an external emulator.
pub fn endpoint_props(emu: &Emu, streams: &[String]) -> Vec<String> {
    args![
        "-p",
        format!("endpoint={}", emu.endpoint),
        "-p",
        "region=us-east-1",
        "-p",
        format!("delivery_streams={}", streams.join(",")),
    ]
}

/// Mean of per-second totals over the whole seconds `from..to` (unix), zero-filled.
pub fn mean_rate(series: &BTreeMap<u64, u64>, from: u64, to: u64) -> f64 {
    if to <= from {
        return 0.0;
    }
    let sum: u64 = (from..to)
        .map(|t| series.get(&t).copied().unwrap_or(0))
        .sum();
    sum as f64 / (to - from) as f64
}

/// Total accepted bytes per unix second over all streams (from merged series).
pub fn total_series(m: &BTreeMap<String, BTreeMap<u64, (u64, u64)>>) -> BTreeMap<u64, u64> {
    let mut out = BTreeMap::new();
    for s in m.values() {
        for (t, (b, _)) in s {
            *out.entry(*t).or_insert(0) += b;
        }
    }
    out
}

/// Locks, ignoring poison.
pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
