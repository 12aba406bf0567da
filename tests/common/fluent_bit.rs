//! A real Fluent Bit running the built plugin (`-e libfirehose_fanout.so`), for end-to-end
//! tests. The binary is `FLUENT_BIT_BIN`, else `fluent-bit` on PATH, else the one in
//! `../shared/fluent-bit/bin/`. Without one the tests say so in one line and pass, unless
//! `FIREHOSE_FANOUT_REQUIRE_FLUENT_BIT=1` (CI), where a missing binary fails.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The Fluent Bit executable, held for one test at a time: these tests measure timing
/// (how soon delivery resumes) on a 2-core machine, so two engines never run at once.
pub struct Binary {
    path: PathBuf,
    _serial: std::sync::MutexGuard<'static, ()>,
}

impl std::ops::Deref for Binary {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.path
    }
}

/// The Fluent Bit executable to test with, or `None` (after saying so) where there is none.
pub fn binary() -> Option<Binary> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let path = find_binary()?;
    let guard = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    Some(Binary {
        path,
        _serial: guard,
    })
}

fn find_binary() -> Option<PathBuf> {
    let found = std::env::var_os("FLUENT_BIT_BIN")
        .map(PathBuf::from)
        .filter(|p| p.is_file())
        .or_else(|| {
            std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|d| d.join("fluent-bit"))
                    .find(|p| p.is_file())
            })
        })
        .or_else(|| {
            let p =
                Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fluent-bit/bin/fluent-bit");
            p.is_file().then_some(p)
        });
    if found.is_none() {
        assert!(
            std::env::var("FIREHOSE_FANOUT_REQUIRE_FLUENT_BIT").as_deref() != Ok("1"),
            "FIREHOSE_FANOUT_REQUIRE_FLUENT_BIT=1 but no Fluent Bit was found (FLUENT_BIT_BIN, PATH, ../shared/fluent-bit/bin)"
        );
        eprintln!("no Fluent Bit binary (FLUENT_BIT_BIN, PATH, ../shared/fluent-bit/bin): real-engine test skipped");
    }
    found
}

/// A port nobody listens on now (bound, then released).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local addr").port()
}

/// A fresh folder under target/ for one test's files (config, input, storage, log).
pub fn workdir(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let target = exe.ancestors().nth(3).expect("target dir").to_path_buf();
    let dir = target.join("fluent-bit-e2e").join(name);
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("create the test folder");
    dir
}

/// A parsers file with the `json` parser (this Fluent Bit has none built in).
pub fn write_parsers(dir: &Path) -> PathBuf {
    let p = dir.join("parsers.conf");
    fs::write(
        &p,
        "[PARSER]\n    Name   json\n    Format json\n\n[PARSER]\n    Name   docker\n    Format json\n    Time_Key time\n    Time_Format %Y-%m-%dT%H:%M:%S.%L%z\n    Time_Keep On\n",
    )
    .expect("write parsers.conf");
    p
}

/// Appends JSON lines `{"seq": N, "log": "..."}` for `seq` in `range` to `path`.
pub fn append_lines(path: &Path, range: std::ops::Range<u64>, pad: usize) {
    let mut f = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open the input file");
    let filler = "x".repeat(pad);
    let mut buf = String::with_capacity(64 * 1024);
    for seq in range {
        buf.push_str(&format!(
            "{{\"seq\":{seq},\"log\":\"line {seq} of the real-engine test {filler}\"}}\n"
        ));
        if buf.len() > 60 * 1024 {
            f.write_all(buf.as_bytes()).expect("write input");
            buf.clear();
        }
    }
    f.write_all(buf.as_bytes()).expect("write input");
}

/// The environment every run gets: test credentials, no instance metadata, no profile.
fn aws_env(cmd: &mut Command) {
    cmd.env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ACCESS_KEY_ID", "AKIDFIREHOSEFANOUTTEST")
        .env("AWS_SECRET_ACCESS_KEY", super::TEST_SECRET)
        .env("AWS_CONFIG_FILE", "/nonexistent/firehose-fanout-test")
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/firehose-fanout-test",
        )
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ROLE_ARN")
        .env_remove("AWS_WEB_IDENTITY_TOKEN_FILE")
        .env_remove("HTTPS_PROXY")
        .env_remove("HTTP_PROXY")
        .env_remove("https_proxy")
        .env_remove("http_proxy")
        .env_remove("ALL_PROXY")
        .env_remove("all_proxy")
        .env_remove("NO_PROXY")
        .env_remove("no_proxy");
}

/// One running Fluent Bit; killed when dropped.
pub struct FluentBit {
    child: Option<Child>,
    pub log_path: PathBuf,
    bin: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
}

impl FluentBit {
    /// Starts `bin -e <plugin> -c <config>` with `env` added; output goes to `dir/fluent-bit.log`.
    pub fn start(bin: &Path, config: &Path, env: &[(&str, &str)]) -> FluentBit {
        Self::start_args(
            bin,
            &[
                "-e".into(),
                super::plugin_path().display().to_string(),
                "-c".into(),
                config.display().to_string(),
            ],
            config.parent().expect("config folder"),
            env,
        )
    }

    /// Starts `bin args…` with its output in `dir/fluent-bit.log`.
    pub fn start_args(bin: &Path, args: &[String], dir: &Path, env: &[(&str, &str)]) -> FluentBit {
        let mut fb = FluentBit {
            child: None,
            log_path: dir.join("fluent-bit.log"),
            bin: bin.to_path_buf(),
            args: args.to_vec(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        fb.spawn();
        fb
    }

    fn spawn(&mut self) {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .expect("open the log file");
        let mut cmd = Command::new(&self.bin);
        cmd.args(&self.args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log);
        aws_env(&mut cmd);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        self.child = Some(cmd.spawn().expect("start fluent-bit"));
    }

    /// Starts the same command again (after `kill9` or `stop`), appending to the same log.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "still running");
        self.spawn();
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().expect("running").id() as i32
    }

    /// The whole log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// The exit status if it has ended (`None` while running).
    pub fn exit_status(&mut self) -> Option<std::process::ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// Waits until the log contains `needle`, or panics after `timeout` with the log.
    pub fn wait_log(&self, needle: &str, timeout: Duration) {
        let until = Instant::now() + timeout;
        while Instant::now() < until {
            if self.log().contains(needle) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "'{needle}' not in the log within {timeout:?}:\n{}",
            self.tail()
        );
    }

    /// The last lines of the log, for failure messages.
    pub fn tail(&self) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(60)..].join("\n")
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: plain kill(2) on our own child's pid.
        let rc = unsafe { libc::kill(self.pid(), sig) };
        assert_eq!(rc, 0, "kill({sig})");
    }

    /// SIGKILL, and reaps the process.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, then waits up to `timeout` for the exit (SIGKILL after that). Returns the
    /// exit status.
    pub fn stop(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let mut c = self.child.take()?;
        // SAFETY: plain kill(2) on our own child's pid.
        unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
        let until = Instant::now() + timeout;
        while Instant::now() < until {
            if let Ok(Some(st)) = c.try_wait() {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = c.kill();
        c.wait().ok()
    }
}

impl Drop for FluentBit {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// seq → arrivals over `streams` of the emulator.
pub fn arrivals(emu: &firehose_emulator::Emulator, streams: &[&str]) -> BTreeMap<u64, u32> {
    let mut seen = BTreeMap::new();
    for s in streams {
        for rec in emu.records(s) {
            super::count_seqs(&rec, &mut seen);
        }
    }
    seen
}

/// Waits until `n` distinct seqs arrived (or `timeout`), then a little longer for strays
/// (duplicates arrive late). Returns the arrivals.
pub fn wait_delivered(
    emu: &firehose_emulator::Emulator,
    streams: &[&str],
    n: usize,
    timeout: Duration,
) -> BTreeMap<u64, u32> {
    let until = Instant::now() + timeout;
    loop {
        let seen = arrivals(emu, streams);
        if seen.len() >= n || Instant::now() >= until {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    std::thread::sleep(Duration::from_millis(1500));
    arrivals(emu, streams)
}

/// (lost, duplicated) of seqs `0..n`.
pub fn lost_and_duplicated(seen: &BTreeMap<u64, u32>, n: u64) -> (u64, u64) {
    let lost = (0..n).filter(|s| !seen.contains_key(s)).count() as u64;
    let dup = seen.values().map(|&c| u64::from(c.saturating_sub(1))).sum();
    (lost, dup)
}

/// What differs between the tail pipelines of these tests: extra lines of each section.
#[derive(Default)]
pub struct Extra<'a> {
    pub service: &'a str,
    pub input: &'a str,
    pub output: &'a str,
    /// Environment of the Fluent Bit process, beyond the test credentials.
    pub env: &'a [(&'a str, &'a str)],
}

/// A pipeline in `dir`: `lines` JSON lines (each padded by `pad`) written to `dir/app.jsonl`,
/// then Fluent Bit started tailing them into `streams` at `endpoint`. Returns the input file
/// (to append to) and the running Fluent Bit.
pub fn start_tail(
    bin: &Path,
    dir: &Path,
    endpoint: &str,
    streams: &[&str],
    lines: (std::ops::Range<u64>, usize),
    extra: Extra,
) -> (std::path::PathBuf, FluentBit) {
    let input = dir.join("app.jsonl");
    append_lines(&input, lines.0, lines.1);
    let output = format!(
        "    endpoint {endpoint}\n    delivery_streams {}\n{}",
        streams.join(", "),
        extra.output
    );
    let conf = tail_config(dir, &input, extra.service, extra.input, &output);
    let fb = FluentBit::start(bin, &conf, extra.env);
    (input, fb)
}

/// A classic config: tail of `input` (JSON lines) → firehose_fanout with `output` lines.
pub fn tail_config(
    dir: &Path,
    input: &Path,
    service: &str,
    input_extra: &str,
    output: &str,
) -> std::path::PathBuf {
    let parsers = write_parsers(dir);
    let conf = dir.join("fluent-bit.conf");
    std::fs::write(
        &conf,
        format!(
            "[SERVICE]
    Flush        1
    Grace        5
    Log_Level    info
    Parsers_File {parsers}
{service}
[INPUT]
    Name             tail
    Tag              app.log
    Path             {input}
    Parser           json
    Read_from_Head   On
    Refresh_Interval 1
    Buffer_Chunk_Size 256k
{buffer_max}{input_extra}

[OUTPUT]
    Name             firehose_fanout
    Match            app.*
    region           us-east-1
    Retry_Limit      False
{output}
",
            parsers = parsers.display(),
            input = input.display(),
            // Fluent Bit refuses a key given twice: the caller's Buffer_Max_Size wins.
            buffer_max = if input_extra.to_ascii_lowercase().contains("buffer_max_size") {
                ""
            } else {
                "    Buffer_Max_Size  256k\n"
            },
        ),
    )
    .expect("write the config");
    conf
}
