//! `firehose-fanout demo`: emulator + plugin + bundled sample, then a check that every
//! record arrived exactly once, read back from the S3-like objects.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;
use firehose_emulator::EmulatorConfig;
use serde::Deserialize;

use crate::emu;
use crate::engine::EngineOptions;
use crate::input::{ChunkLimits, Input, DEMO_ID_KEY};
use crate::replay::{self, Run, Target};
use crate::units::{self, RetryLimit};

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Records to send: the 2,000-record sample, repeated with distinct ids.
    #[arg(long, value_name = "N", default_value_t = 100_000)]
    pub records: u64,
    /// Keep the delivered objects in this (new or empty) folder [default: a temporary
    /// folder, removed at the end].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Delivery streams of the emulator.
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub streams: usize,
    /// Concurrent flush callers (Fluent Bit's workers).
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub workers: usize,
    /// Extra plugin property (repeatable), e.g. -p max_in_flight_per_stream=8.
    #[arg(short = 'p', long = "property", value_name = "KEY=VALUE", value_parser = units::parse_property)]
    pub props: Vec<(String, String)>,
    /// The plugin library (see `replay --help`).
    #[arg(long, value_name = "PATH")]
    pub plugin: Option<PathBuf>,
    /// Print the plugin's log lines.
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// No progress bar.
    #[arg(long)]
    pub no_progress: bool,
}

/// One delivered object.
#[derive(Debug, Clone)]
pub struct Object {
    pub path: PathBuf,
    pub bytes: u64,
    pub records: u64,
}

/// What the objects hold, compared with what was sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Check {
    pub sent: u64,
    pub exactly_once: u64,
    pub lost: u64,
    pub duplicated: u64,
    /// Lines that are not JSON or carry no (or an unknown) id.
    pub unexpected: u64,
}

impl Check {
    pub fn ok(&self) -> bool {
        self.exactly_once == self.sent
            && self.lost == 0
            && self.duplicated == 0
            && self.unexpected == 0
    }

    pub fn line(&self) -> String {
        let mut s = format!(
            "{} records sent, {} delivered exactly once, {} lost, {} duplicated",
            self.sent, self.exactly_once, self.lost, self.duplicated
        );
        if self.unexpected > 0 {
            s.push_str(&format!(", {} unexpected lines", self.unexpected));
        }
        s
    }
}

#[derive(Deserialize)]
struct IdOnly {
    demo_id: Option<u64>,
}

/// Every object below `root` (hidden temporary files skipped), sorted by path.
pub fn objects(root: &Path) -> Result<Vec<Object>> {
    let mut out = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in
            std::fs::read_dir(&dir).with_context(|| format!("cannot read {}", dir.display()))?
        {
            let entry = entry.with_context(|| format!("cannot read {}", dir.display()))?;
            let path = entry.path();
            let ty = entry.file_type()?;
            if ty.is_dir() {
                dirs.push(path);
            } else if ty.is_file() && !entry.file_name().to_string_lossy().starts_with('.') {
                let bytes = entry.metadata()?.len();
                out.push(Object {
                    path,
                    bytes,
                    records: 0,
                });
            }
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// Reads every object (newline-separated JSON records) and counts each `demo_id`.
pub fn check(objects: &mut [Object], sent: u64) -> Result<Check> {
    let mut seen = vec![0u8; usize::try_from(sent).context("too many records")?];
    let mut unexpected = 0u64;
    let mut line = Vec::new();
    for o in objects.iter_mut() {
        let f = std::fs::File::open(&o.path)
            .with_context(|| format!("cannot read {}", o.path.display()))?;
        let mut r = std::io::BufReader::with_capacity(1 << 20, f);
        let head = r
            .fill_buf()
            .with_context(|| format!("cannot read {}", o.path.display()))?;
        if head.starts_with(&[0x1f, 0x8b]) || head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            bail!(
                "{} is compressed (the compression property): the demo's check reads plain JSON lines, so run it without -p compression",
                o.path.display()
            );
        }
        loop {
            line.clear();
            if r.read_until(b'\n', &mut line)
                .with_context(|| format!("cannot read {}", o.path.display()))?
                == 0
            {
                break;
            }
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            o.records += 1;
            match serde_json::from_slice::<IdOnly>(&line) {
                Ok(IdOnly { demo_id: Some(id) }) if id < sent => {
                    let c = &mut seen[id as usize];
                    *c = c.saturating_add(1);
                }
                _ => unexpected += 1,
            }
        }
    }
    let mut c = Check {
        sent,
        unexpected,
        ..Default::default()
    };
    for &n in &seen {
        match n {
            0 => c.lost += 1,
            1 => c.exactly_once += 1,
            _ => c.duplicated += 1,
        }
    }
    Ok(c)
}

fn prepare_out(out: Option<&Path>) -> Result<(PathBuf, bool)> {
    match out {
        Some(dir) => {
            if dir.exists() {
                let mut entries = std::fs::read_dir(dir)
                    .with_context(|| format!("cannot read {}", dir.display()))?;
                if entries.next().is_some() {
                    bail!(
                        "{} is not empty: the check reads every object in it, so give a new or empty folder",
                        dir.display()
                    );
                }
            }
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            Ok((dir.to_path_buf(), false))
        }
        None => {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .subsec_nanos();
            let dir = std::env::temp_dir().join(format!(
                "firehose-fanout-demo-{}-{nanos}",
                std::process::id()
            ));
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            Ok((dir, true))
        }
    }
}

pub fn run(args: DemoArgs) -> Result<i32> {
    if args.records == 0 {
        bail!("--records must be at least 1");
    }
    let (dir, temporary) = prepare_out(args.out.as_deref())?;
    let result = demo(&args, &dir);
    if temporary {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

fn demo(args: &DemoArgs, dir: &Path) -> Result<i32> {
    // Before anything is printed: no plugin, no demo.
    let plugin_path = crate::plugin::locate(args.plugin.as_deref())?;
    let names = emu::stream_names(&[], Some(args.streams), "logs-")?;
    let config = EmulatorConfig {
        streams: emu::specs(&names),
        output_dir: Some(dir.to_path_buf()),
        record_retention: Some(0),
        ..Default::default()
    };
    let copies = args.records.div_ceil(2000);
    println!(
        "firehose-fanout demo: {} Kubernetes log records (a real Fluent Bit tail chunk of 2,000 records, sent {copies} time{} with a distinct {DEMO_ID_KEY} each)",
        units::int(args.records),
        if copies == 1 { "" } else { "s" }
    );
    println!(
        "  → the plugin, loaded and flushed as Fluent Bit does ({} workers) → an emulated Firehose with {} delivery streams ({}) → S3-like objects in {}",
        args.workers,
        names.len(),
        names.join(", "),
        dir.display()
    );
    println!();
    let run = Run {
        inputs: vec![Input::Sample {
            records: args.records,
        }],
        limits: ChunkLimits {
            max_bytes: 2_048_000,
            max_records: 2000,
            flush_interval: Duration::from_secs(1),
        },
        rate: None,
        engine: EngineOptions {
            workers: args.workers,
            retry_limit: RetryLimit::Unlimited,
            retry_wait: Duration::from_secs(1),
            retry_wait_max: Duration::from_secs(30),
            tag: "kube.var.log.containers.web".to_string(),
            mem_buf_limit: None,
        },
        plugin: Some(plugin_path),
        props: args.props.clone(),
        target: Target::InProcess {
            config: Box::new(config),
            outage: None,
        },
        verbose: args.verbose,
        progress: !args.no_progress,
        total_records: Some(args.records),
    };
    let done = replay::execute(run)?;
    if let Some(e) = done.emulator {
        e.flush_output()
            .context("the emulator could not write its objects")?;
        e.shutdown();
    }
    print!("{}", done.summary.table());
    println!();

    let mut objs = objects(dir)?;
    let check = check(&mut objs, args.records)?;
    println!("delivered objects (in {}):", dir.display());
    let w = objs
        .iter()
        .map(|o| {
            o.path
                .strip_prefix(dir)
                .unwrap_or(&o.path)
                .display()
                .to_string()
                .len()
        })
        .max()
        .unwrap_or(0);
    for o in &objs {
        let rel = o
            .path
            .strip_prefix(dir)
            .unwrap_or(&o.path)
            .display()
            .to_string();
        println!(
            "  {rel:<w$}  {:>10}  {:>9} records",
            units::bytes(o.bytes),
            units::int(o.records)
        );
    }
    println!(
        "  {} objects, {}, {} records",
        objs.len(),
        units::bytes(objs.iter().map(|o| o.bytes).sum()),
        units::int(objs.iter().map(|o| o.records).sum())
    );
    println!();
    println!("{}", check.line());
    if check.ok() {
        Ok(0)
    } else {
        eprintln!("firehose-fanout: the demo check failed: {}", check.line());
        Ok(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_counts() {
        let dir = std::env::temp_dir().join(format!("ffcli-check-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("s/2026")).unwrap();
        std::fs::write(
            dir.join("s/2026/a"),
            "{\"demo_id\":0,\"x\":1}\n{\"demo_id\":1}\n{\"demo_id\":1}\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("s/2026/b"),
            "{\"demo_id\":3}\nnot json\n{\"demo_id\":99}\n",
        )
        .unwrap();
        std::fs::write(dir.join("s/2026/.b.tmp"), "{\"demo_id\":2}\n").unwrap();
        let mut objs = objects(&dir).unwrap();
        assert_eq!(objs.len(), 2);
        let c = check(&mut objs, 4).unwrap();
        assert_eq!(
            c,
            Check {
                sent: 4,
                exactly_once: 2,
                lost: 1,
                duplicated: 1,
                unexpected: 2
            }
        );
        assert!(!c.ok());
        assert_eq!(objs[0].records, 3);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
