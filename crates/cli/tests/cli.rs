//! The `firehose-fanout` binary end to end: every subcommand through the real executable,
//! talking only to 127.0.0.1.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_firehose::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_firehose::primitives::Blob;
use aws_sdk_firehose::types::Record;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_firehose-fanout");

fn samples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/samples")
}

/// The binary with a clean AWS environment (no profile, no config files, no plugin
/// override), so it finds the plugin next to itself and sets its own dummy credentials.
fn cli() -> Command {
    let mut c = Command::new(BIN);
    for v in [
        "AWS_PROFILE",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_ROLE_ARN",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "FIREHOSE_FANOUT_PLUGIN",
        "FLB_HOST_ECHO_LOGS",
    ] {
        c.env_remove(v);
    }
    c.env("AWS_CONFIG_FILE", "/nonexistent/firehose-fanout-cli-test")
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/firehose-fanout-cli-test",
        )
        .stdin(Stdio::null());
    c
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let p =
            std::env::temp_dir().join(format!("ffcli-test-{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn stderr_of(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout_of(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Runs to the end (at most `limit`), killing the process if it hangs.
fn run_with_limit(mut c: Command, limit: Duration) -> Output {
    let mut child = c
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let t_err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let status = wait_limit(&mut child, limit);
    Output {
        status,
        stdout: t_out.join().unwrap(),
        stderr: t_err.join().unwrap(),
    }
}

fn wait_limit(child: &mut Child, limit: Duration) -> ExitStatus {
    let t0 = Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if t0.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the command did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Asserts a failure with exactly one line on stderr, and returns that line.
fn one_error_line(o: &Output) -> String {
    assert!(
        !o.status.success(),
        "expected a failure, got {:?}",
        o.status
    );
    let err = stderr_of(o);
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one line on stderr, got:\n{err}");
    assert!(
        lines[0].starts_with("firehose-fanout: error: "),
        "{}",
        lines[0]
    );
    lines[0].to_string()
}

fn replay_json(args: &[&str]) -> (Value, Output) {
    let mut c = cli();
    c.arg("replay").args(args).args(["--json", "--no-progress"]);
    let o = run_with_limit(c, Duration::from_secs(60));
    assert!(
        o.status.success(),
        "replay failed: {:?}\n{}",
        o.status,
        stderr_of(&o)
    );
    let v: Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", stdout_of(&o)));
    (v, o)
}

fn u(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} missing in {v:#}"))
}

/// A running `emulate`.
struct Emulate {
    child: Child,
    endpoint: String,
    stdout: BufReader<ChildStdout>,
    banner: String,
}

impl Emulate {
    fn start(args: &[&str]) -> Emulate {
        let mut child = cli()
            .arg("emulate")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("emulate starts");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut banner = String::new();
        stdout.read_line(&mut banner).unwrap();
        let start = banner
            .find("http://127.0.0.1:")
            .unwrap_or_else(|| panic!("no endpoint in {banner:?}"));
        let endpoint: String = banner[start..]
            .chars()
            .take_while(|c| !c.is_whitespace())
            .collect();
        let mut hint = String::new();
        stdout.read_line(&mut hint).unwrap();
        assert!(hint.contains(&format!("endpoint={endpoint}")), "{hint}");
        Emulate {
            child,
            endpoint,
            stdout,
            banner,
        }
    }

    /// SIGTERM, then the exit status and the rest of stdout.
    fn terminate(mut self) -> (ExitStatus, String) {
        // SAFETY: sending a signal to our own child process.
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        assert_eq!(rc, 0);
        let status = wait_limit(&mut self.child, Duration::from_secs(20));
        let mut rest = String::new();
        let _ = self.stdout.read_to_string(&mut rest);
        (status, rest)
    }
}

impl Drop for Emulate {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sdk_client(endpoint: &str) -> aws_sdk_firehose::Client {
    let config = aws_sdk_firehose::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("AKIDTEST", "secret", None, None, "test"))
        .build();
    aws_sdk_firehose::Client::from_conf(config)
}

fn records(payloads: &[&str]) -> Vec<Record> {
    payloads
        .iter()
        .map(|p| {
            Record::builder()
                .data(Blob::new(p.as_bytes()))
                .build()
                .unwrap()
        })
        .collect()
}

fn all_files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                dirs.push(e.path());
            } else {
                out.push(e.path());
            }
        }
    }
    out.sort();
    out
}

fn digits(s: &str, n: usize) -> bool {
    s.len() == n && s.bytes().all(|b| b.is_ascii_digit())
}

/// `<stream>/YYYY/MM/DD/HH/<stream>-1-YYYY-MM-DD-HH-MM-SS-<id>`
fn assert_object_layout(root: &Path, path: &Path, stream: &str) {
    let rel = path.strip_prefix(root).unwrap();
    let parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    assert_eq!(parts.len(), 6, "{rel:?}");
    assert_eq!(parts[0], stream, "{rel:?}");
    assert!(
        digits(&parts[1], 4)
            && digits(&parts[2], 2)
            && digits(&parts[3], 2)
            && digits(&parts[4], 2),
        "{rel:?}"
    );
    let prefix = format!(
        "{stream}-1-{}-{}-{}-{}-",
        parts[1], parts[2], parts[3], parts[4]
    );
    let rest = parts[5]
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("{rel:?} should start with {prefix}"));
    let mut it = rest.splitn(3, '-');
    let (mm, ss, id) = (
        it.next().unwrap_or(""),
        it.next().unwrap_or(""),
        it.next().unwrap_or(""),
    );
    assert!(digits(mm, 2) && digits(ss, 2) && !id.is_empty(), "{rel:?}");
}

#[test]
fn emulate_takes_sdk_puts_and_writes_objects_on_sigterm() {
    let dir = TempDir::new("emulate");
    let out = dir.path().join("out");
    let out_s = out.to_str().unwrap();
    let emu = Emulate::start(&[
        "--port", "0", "--stream", "alpha", "--stream", "beta", "--out", out_s,
    ]);
    assert!(emu.banner.contains("alpha, beta"), "{}", emu.banner);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = sdk_client(&emu.endpoint);
        let a = client
            .put_record_batch()
            .delivery_stream_name("alpha")
            .set_records(Some(records(&["a1\n", "a2\n", "a3\n"])))
            .send()
            .await
            .expect("PutRecordBatch alpha");
        assert_eq!(a.failed_put_count(), 0);
        assert_eq!(a.request_responses().len(), 3);
        let b = client
            .put_record_batch()
            .delivery_stream_name("beta")
            .set_records(Some(records(&["b1\n", "b2\n"])))
            .send()
            .await
            .expect("PutRecordBatch beta");
        assert_eq!(b.failed_put_count(), 0);
        let missing = client
            .put_record_batch()
            .delivery_stream_name("nope")
            .set_records(Some(records(&["x\n"])))
            .send()
            .await;
        assert!(missing.is_err());
    });
    let (status, rest) = emu.terminate();
    assert!(status.success(), "{status:?}");
    assert!(rest.contains("5 records"), "{rest}");
    let files = all_files(&out);
    assert_eq!(files.len(), 2, "{files:?}");
    for f in &files {
        let stream = if f.to_string_lossy().contains("/alpha/") {
            "alpha"
        } else {
            "beta"
        };
        assert_object_layout(&out, f, stream);
        let text = std::fs::read_to_string(f).unwrap();
        let expect = if stream == "alpha" {
            "a1\na2\na3\n"
        } else {
            "b1\nb2\n"
        };
        assert_eq!(text, expect);
    }
}

#[test]
fn emulate_reads_a_config_file_and_reports_a_port_in_use() {
    let dir = TempDir::new("emucfg");
    let cfg = dir.path().join("emulator.json");
    std::fs::write(
        &cfg,
        r#"{"streams": [{"name": "from-file", "quota": {"records_per_second": 10}}], "seed": 3}"#,
    )
    .unwrap();
    let emu = Emulate::start(&["--config", cfg.to_str().unwrap(), "--port", "0"]);
    assert!(emu.banner.contains("from-file"), "{}", emu.banner);

    // The same port again: one clear line, non-zero exit.
    let port = emu.endpoint.rsplit(':').next().unwrap().to_string();
    let mut c = cli();
    c.args(["emulate", "--port", &port]);
    let o = run_with_limit(c, Duration::from_secs(20));
    let line = one_error_line(&o);
    assert!(line.contains("in use") && line.contains(&port), "{line}");

    let (status, _) = emu.terminate();
    assert!(status.success());

    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, r#"{"bogus": 1}"#).unwrap();
    let mut c = cli();
    c.args(["emulate", "--config", bad.to_str().unwrap()]);
    let line = one_error_line(&run_with_limit(c, Duration::from_secs(20)));
    assert!(
        line.contains("bad.json") && line.contains("bogus"),
        "{line}"
    );
}

#[test]
fn replay_json_lines_to_an_in_process_emulator() {
    let dir = TempDir::new("json");
    let file = dir.path().join("records.jsonl");
    let mut text = String::new();
    let mut json_bytes = 0;
    for i in 0..500 {
        let line = format!(
            "{{\"seq\": {i}, \"level\": \"info\", \"nested\": {{\"a\": [1, 2.5, null, true]}}, \"msg\": \"hello {i}\"}}"
        );
        // What the plugin ships: the same object as compact JSON, one per line.
        let v: Value = serde_json::from_str(&line).unwrap();
        json_bytes += serde_json::to_string(&v).unwrap().len() as u64 + 1;
        text.push_str(&line);
        text.push('\n');
    }
    std::fs::write(&file, text).unwrap();
    let (v, o) = replay_json(&[
        file.to_str().unwrap(),
        "--emulate-streams",
        "2",
        "-v",
        "--chunk-records",
        "100",
    ]);
    assert_eq!(u(&v, "records_in"), 500);
    assert_eq!(u(&v, "records_acked"), 500);
    assert_eq!(u(&v, "records_failed"), 0);
    assert_eq!(u(&v, "delivered_bytes"), json_bytes);
    assert_eq!(u(&v, "chunks"), 5);
    assert_eq!(u(&v, "flb_ok"), 5);
    assert_eq!(v["target"], "emulator");
    let streams = v["streams"].as_array().unwrap();
    assert_eq!(streams.len(), 2);
    let total: u64 = streams.iter().map(|s| s["bytes"].as_u64().unwrap()).sum();
    assert_eq!(total, json_bytes);
    assert!(v["cpu_seconds"].as_f64().unwrap() > 0.0);
    assert!(u(&v, "peak_rss_bytes") > 0);
    // -v: the plugin's own lines on stderr.
    let err = stderr_of(&o);
    assert!(
        err.contains("[plugin] [ info]") && err.contains("started"),
        "{err}"
    );
}

#[test]
fn replay_text_lines_and_raw_chunks() {
    let dir = TempDir::new("text");
    let file = dir.path().join("app.log");
    let mut text = String::new();
    let mut json_bytes = 0;
    for i in 0..300 {
        let line = format!("2026-01-01T00:00:00Z line {i} with \"quotes\" and \\ backslash");
        json_bytes += serde_json::json!({ "log": line }).to_string().len() as u64 + 1;
        text.push_str(&line);
        text.push('\n');
        if i == 10 {
            text.push('\n'); // empty lines are skipped
        }
    }
    std::fs::write(&file, text).unwrap();
    let (v, _) = replay_json(&[file.to_str().unwrap(), "--emulate-streams", "3"]);
    assert_eq!(u(&v, "records_in"), 300);
    assert_eq!(u(&v, "records_acked"), 300);
    assert_eq!(u(&v, "delivered_bytes"), json_bytes);

    // Raw chunks as Fluent Bit passes them: 5 records (with group markers) + 10.
    let s = samples();
    let (v, _) = replay_json(&[
        s.join("handmade_groups_and_legacy.msgpack")
            .to_str()
            .unwrap(),
        s.join("dummy_chunk_multi_meta.msgpack").to_str().unwrap(),
        "--emulate-streams",
        "1",
    ]);
    assert_eq!(u(&v, "records_in"), 15);
    assert_eq!(u(&v, "chunks"), 2);
    assert_eq!(u(&v, "records_acked"), 15);
    assert!(u(&v, "delivered_bytes") > 15 * 10, "{v:#}");
}

#[test]
fn replay_generated_load_with_faults_and_a_timeline() {
    let dir = TempDir::new("gen");
    let timeline = dir.path().join("timeline.csv");
    let (v, _) = replay_json(&[
        "--generate",
        "3000",
        "--record-size",
        "200",
        "--chunk-records",
        "500",
        "--emulate-streams",
        "3",
        "--fail-records",
        "0.2",
        "--seed",
        "7",
        "-p",
        "retry_initial_backoff=5ms",
        "-p",
        "retry_max_backoff=50ms",
        "--timeline",
        timeline.to_str().unwrap(),
    ]);
    assert_eq!(u(&v, "records_in"), 3000);
    assert_eq!(u(&v, "records_acked"), 3000);
    assert!(u(&v, "failed_records") > 0, "{v:#}");
    // Every generated record is exactly 200 bytes of JSON: all arrived and none twice,
    // although a fifth of the Firehose records failed and were resent.
    let bytes = u(&v, "delivered_bytes");
    assert_eq!(bytes, 3000 * 200);
    let csv = std::fs::read_to_string(&timeline).unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("unix_time,elapsed_s,logs-0,logs-1,logs-2,total")
    );
    let total: u64 = lines
        .map(|l| l.rsplit(',').next().unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(total, bytes);
}

#[test]
fn replay_to_an_external_emulator_reads_its_stats() {
    let emu = Emulate::start(&["--port", "0", "--streams", "2"]);
    let endpoint = format!("endpoint={}", emu.endpoint);
    let (v, _) = replay_json(&[
        "--generate",
        "1000",
        "-p",
        &endpoint,
        "-p",
        "region=us-east-1",
        "-p",
        "delivery_streams=logs-0,logs-1",
        "--workers",
        "1",
    ]);
    assert_eq!(v["target"], "endpoint");
    assert_eq!(u(&v, "records_acked"), 1000);
    assert_eq!(u(&v, "delivered_bytes"), 1000 * 256);
    assert_eq!(v["streams"].as_array().unwrap().len(), 2);
    let (status, rest) = emu.terminate();
    assert!(status.success());
    assert!(rest.contains("(256.0 KB) accepted"), "{rest}");
}

#[test]
fn replay_errors_are_one_line() {
    let dir = TempDir::new("errors");
    // A missing file.
    let mut c = cli();
    c.args([
        "replay",
        "/nonexistent/firehose-fanout/records.json",
        "--emulate-streams",
        "1",
        "--no-progress",
    ]);
    let line = one_error_line(&run_with_limit(c, Duration::from_secs(30)));
    assert!(
        line.contains("/nonexistent/firehose-fanout/records.json") && line.contains("No such file"),
        "{line}"
    );

    // A property the plugin refuses: its own error line.
    let mut c = cli();
    c.args([
        "replay",
        "--generate",
        "10",
        "--emulate-streams",
        "1",
        "--no-progress",
        "-p",
        "flush_timeout=banana",
    ]);
    let line = one_error_line(&run_with_limit(c, Duration::from_secs(30)));
    assert!(
        line.contains("flush_timeout") && line.contains("banana"),
        "{line}"
    );

    // A chunk file that is not one.
    let bad = dir.path().join("bad.msgpack");
    std::fs::write(&bad, [0x92, 0xc1, 0x00]).unwrap();
    let mut c = cli();
    c.args([
        "replay",
        bad.to_str().unwrap(),
        "--emulate-streams",
        "1",
        "--no-progress",
    ]);
    let line = one_error_line(&run_with_limit(c, Duration::from_secs(30)));
    assert!(
        line.contains("bad.msgpack") && line.contains("not a Fluent Bit chunk"),
        "{line}"
    );

    // A JSON lines file with a broken line.
    let broken = dir.path().join("broken.json");
    std::fs::write(&broken, "{\"a\": 1}\n{\"a\": \n").unwrap();
    let mut c = cli();
    c.args([
        "replay",
        broken.to_str().unwrap(),
        "--emulate-streams",
        "1",
        "--no-progress",
    ]);
    let line = one_error_line(&run_with_limit(c, Duration::from_secs(30)));
    assert!(
        line.contains("broken.json:2") && line.contains("invalid JSON"),
        "{line}"
    );

    // No plugin library where it was said to be.
    let mut c = cli();
    c.args([
        "replay",
        "--generate",
        "1",
        "--emulate-streams",
        "1",
        "--plugin",
        "/nonexistent/libx.so",
    ]);
    let line = one_error_line(&run_with_limit(c, Duration::from_secs(30)));
    assert!(line.contains("/nonexistent/libx.so"), "{line}");
    let mut c = cli();
    c.env("FIREHOSE_FANOUT_PLUGIN", "/nonexistent/liby.so")
        .args(["replay", "--generate", "1", "--emulate-streams", "1"]);
    let line = one_error_line(&run_with_limit(c, Duration::from_secs(30)));
    assert!(line.contains("FIREHOSE_FANOUT_PLUGIN"), "{line}");
}

#[test]
fn demo_delivers_every_record_exactly_once() {
    let dir = TempDir::new("demo");
    let out = dir.path().join("objects");
    let mut c = cli();
    c.args([
        "demo",
        "--records",
        "4000",
        "--no-progress",
        "--out",
        out.to_str().unwrap(),
    ]);
    let o = run_with_limit(c, Duration::from_secs(60));
    let stdout = stdout_of(&o);
    assert!(
        o.status.success(),
        "{:?}\n{stdout}\n{}",
        o.status,
        stderr_of(&o)
    );
    assert!(
        stdout.contains("4000 records sent, 4000 delivered exactly once, 0 lost, 0 duplicated"),
        "{stdout}"
    );
    for s in ["logs-0", "logs-1", "logs-2"] {
        assert!(stdout.contains(&format!("  {s} ")), "{stdout}");
    }
    let files = all_files(&out);
    assert!(!files.is_empty());
    for f in &files {
        let stream = f
            .strip_prefix(&out)
            .unwrap()
            .iter()
            .next()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert_object_layout(&out, f, &stream);
    }
}
