//! `firehose-fanout replay`: the plugin loaded as Fluent Bit loads it, fed with chunks
//! from files or a generator by N workers, measured.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use firehose_emulator::{Emulator, EmulatorConfig, Stats};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

use crate::emu::{self, EmuFlags};
use crate::engine::{self, EngineOptions, Outcome, Queue};
use crate::input::{self, ChunkLimits, Format, Input, ProduceStats};
use crate::plugin::{self, LogTail};
use crate::summary::{self, Latency, Summary};
use crate::sys;
use crate::units::{self, RetryLimit};

/// Region given to the plugin for a local emulator.
pub const LOCAL_REGION: &str = "us-east-1";

#[derive(Args, Debug)]
pub struct ReplayArgs {
    /// Input files ('-' = standard input): JSON lines, text lines or raw chunks.
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Format of the input files.
    #[arg(long, value_enum, default_value_t = Format::Auto)]
    pub format: Format,
    /// Instead of files: generate N records.
    #[arg(long, value_name = "N", conflicts_with = "files")]
    pub generate: Option<u64>,
    /// Instead of files: N records of the bundled Kubernetes sample (a real Fluent Bit tail
    /// chunk of 2,000 records, ~1 KB each as JSON), each with a distinct `demo_id`.
    #[arg(long, value_name = "N", conflicts_with_all = ["files", "generate"])]
    pub sample: Option<u64>,
    /// Size of a generated record, as JSON (e.g. 1KiB).
    #[arg(long, value_name = "SIZE", default_value = "256", value_parser = units::parse_positive_size)]
    pub record_size: u64,
    /// Feed at most this many records per second (default: as fast as the plugin takes them).
    #[arg(long, value_name = "N", value_parser = units::parse_rate)]
    pub rate: Option<f64>,

    /// Plugin property, as on Fluent Bit's command line (repeatable): -p region=eu-west-1.
    #[arg(short = 'p', long = "property", value_name = "KEY=VALUE", value_parser = units::parse_property)]
    pub props: Vec<(String, String)>,
    /// The plugin library [default: $FIREHOSE_FANOUT_PLUGIN, else libfirehose_fanout.so
    /// next to this executable or in its deps/ folder].
    #[arg(long, value_name = "PATH")]
    pub plugin: Option<PathBuf>,
    /// Tag of the records.
    #[arg(long, default_value = "replay")]
    pub tag: String,

    /// Concurrent flush callers, as Fluent Bit's `workers` (0 = on the engine thread)
    /// [default: -p workers, else 2].
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,
    /// Retries of a chunk answered FLB_RETRY before it is given up, or no_limits (Fluent
    /// Bit's Retry_Limit) [default: -p retry_limit, else 1].
    #[arg(long, value_name = "N", value_parser = units::parse_retry_limit)]
    pub retry_limit: Option<RetryLimit>,
    /// Base wait before a retry (full jitter, doubling up to 30 s, as Fluent Bit's scheduler).
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = units::parse_duration)]
    pub retry_wait: Duration,
    /// Chunk size limit (Fluent Bit's is about 2 MB).
    #[arg(long, value_name = "SIZE", default_value = "2048000", value_parser = units::parse_positive_size)]
    pub chunk_size: u64,
    /// Pause the input while the chunks held (queued, being flushed, waiting to retry)
    /// reach this many bytes, like Fluent Bit's `Mem_Buf_Limit` [default: no limit].
    #[arg(long, value_name = "SIZE", value_parser = units::parse_positive_size)]
    pub mem_buf_limit: Option<u64>,
    /// Records per chunk at most.
    #[arg(long, value_name = "N", default_value_t = 2000)]
    pub chunk_records: u64,
    /// A chunk is flushed at the latest this long after its first record (Fluent Bit's Flush).
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = units::parse_duration)]
    pub flush_interval: Duration,

    /// Start an emulator in this process with N streams (<prefix>0..) and point the
    /// plugin at it (region, endpoint and delivery_streams, unless given with -p).
    #[arg(long, value_name = "N")]
    pub emulate_streams: Option<usize>,
    /// Name prefix of the emulated streams.
    #[arg(
        long,
        value_name = "PREFIX",
        default_value = "logs-",
        requires = "emulate_streams"
    )]
    pub emulate_prefix: String,
    /// Output folder of the emulator (S3-like objects).
    #[arg(long, value_name = "DIR", requires = "emulate_streams")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub emu: EmuFlags,

    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
    /// Write delivered bytes per second per stream as CSV (needs an emulator).
    #[arg(long, value_name = "FILE")]
    pub timeline: Option<PathBuf>,
    /// Print the plugin's log lines (-vv: and set log_level=debug).
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// No progress bar (it is never shown when stderr is not a terminal).
    #[arg(long)]
    pub no_progress: bool,
}

/// Where the plugin's records go.
pub enum Target {
    /// An emulator started here.
    InProcess {
        config: Box<EmulatorConfig>,
        outage: Option<(Duration, Duration)>,
    },
    /// Whatever `-p endpoint` says (asked for `/stats` when it is the emulator).
    Endpoint(String),
    /// AWS itself.
    Aws,
}

/// A prepared run.
pub struct Run {
    pub inputs: Vec<Input>,
    pub limits: ChunkLimits,
    pub rate: Option<f64>,
    pub engine: EngineOptions,
    pub plugin: Option<PathBuf>,
    pub props: Vec<(String, String)>,
    pub target: Target,
    pub verbose: u8,
    pub progress: bool,
    pub total_records: Option<u64>,
}

/// What a run leaves.
pub struct Done {
    pub summary: Summary,
    /// The in-process emulator, still running (dropping it writes its buffered output).
    pub emulator: Option<Emulator>,
    /// The emulator's figures at the end, and the run's first and last second.
    pub stats: Option<Stats>,
    pub streams: Vec<String>,
    pub seconds: (u64, u64),
}

fn prop<'a>(props: &'a [(String, String)], key: &str) -> Option<&'a str> {
    props
        .iter()
        .rev()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v.as_str())
}

fn set_default(props: &mut Vec<(String, String)>, key: &str, value: impl Into<String>) {
    if prop(props, key).is_none() {
        props.push((key.to_string(), value.into()));
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

fn progress_bar(show: bool, total: Option<u64>) -> ProgressBar {
    if !show || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr_with_hz(5));
    let template = if total.is_some() {
        "{spinner} {elapsed_precise} [{bar:30}] {human_pos}/{human_len} records ({rate}, eta {eta})"
    } else {
        "{spinner} {elapsed_precise} {human_pos} records ({rate})"
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        pb.set_style(
            style
                .with_key("rate", |st: &ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = write!(w, "{}/s", units::int(st.per_sec() as u64));
                })
                .progress_chars("=> "),
        );
    }
    pb.enable_steady_tick(Duration::from_millis(200));
    pb
}

/// Runs the plugin over the inputs and measures.
pub fn execute(mut run: Run) -> Result<Done> {
    for i in &run.inputs {
        i.check()?;
    }
    let local = match &run.target {
        Target::InProcess { .. } => true,
        Target::Endpoint(e) => plugin::is_local_endpoint(e),
        Target::Aws => false,
    };
    if local {
        plugin::local_aws_env();
    }
    let plugin_path = plugin::locate(run.plugin.as_deref())?;

    // The target.
    let mut emulator = None;
    let mut show_streams: Vec<String> = Vec::new();
    let (target_name, endpoint) = match &run.target {
        Target::InProcess { config, outage } => {
            let e = Emulator::start((**config).clone())
                .map_err(|e| anyhow!("cannot start the emulator: {e}"))?;
            let endpoint = e.endpoint();
            show_streams = e.stream_names();
            set_default(&mut run.props, "region", LOCAL_REGION);
            set_default(&mut run.props, "endpoint", endpoint.clone());
            if prop(&run.props, "delivery_stream").is_none()
                && prop(&run.props, "delivery_stream_prefix").is_none()
            {
                set_default(&mut run.props, "delivery_streams", show_streams.join(","));
            }
            if let Some((after, duration)) = *outage {
                let h = e.handle();
                std::thread::Builder::new()
                    .name("outage-timer".into())
                    .spawn(move || {
                        std::thread::sleep(after);
                        h.start_outage(None, Some(duration));
                    })
                    .context("cannot start a thread")?;
            }
            emulator = Some(e);
            ("emulator", Some(endpoint))
        }
        Target::Endpoint(e) => ("endpoint", Some(e.clone())),
        Target::Aws => ("aws", None),
    };
    if let Target::Endpoint(_) = run.target {
        if let Some(list) = prop(&run.props, "delivery_streams") {
            show_streams = list
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect();
        }
    }
    let stats_before = match (&run.target, &endpoint) {
        (Target::Endpoint(_), Some(e)) => emu::fetch_stats(e),
        _ => None,
    };

    // The plugin, as Fluent Bit starts it.
    set_default(&mut run.props, "workers", run.engine.workers.to_string());
    if run.verbose >= 2 {
        set_default(&mut run.props, "log_level", "debug");
    }
    let mut tail = LogTail::default();
    let (plugin, ins) = plugin::start(&plugin_path, &run.props)?;
    let print_lines = |tail: &mut LogTail, pb: &ProgressBar| {
        for l in tail.new_lines() {
            pb.suspend(|| eprintln!("{}", plugin::format_line(&l)));
        }
    };
    let pb = progress_bar(run.progress, run.total_records);
    if run.verbose > 0 {
        print_lines(&mut tail, &pb);
    }

    let queue =
        Queue::new(2 * run.engine.workers.max(1) + 2).with_mem_buf_limit(run.engine.mem_buf_limit);
    let t0 = Instant::now();
    let sec0 = unix_now();
    let usage0 = sys::process();
    let emu_cpu0 = sys::threads_cpu("firehose-emulat");
    let callers = run.engine.workers.max(1);
    sys::catch_first_ctrl_c();

    let (produced, outcome) = std::thread::scope(|s| {
        let producer = std::thread::Builder::new()
            .name("replay-input".into())
            .spawn_scoped(s, || {
                let r = input::produce(&run.inputs, run.limits, run.rate, &queue);
                if r.is_err() {
                    queue.stop();
                }
                r
            });
        let mut workers = Vec::new();
        for i in 0..callers {
            let (ins, queue, opts, pb) = (&ins, &queue, &run.engine, &pb);
            workers.push(
                std::thread::Builder::new()
                    .name(format!("replay-worker-{i}"))
                    .spawn_scoped(s, move || engine::worker(i, ins, queue, opts, pb)),
            );
        }
        let producer = match producer {
            Ok(p) => p,
            Err(e) => {
                queue.stop();
                return (
                    Err(anyhow!("cannot start a thread: {e}")),
                    Outcome::default(),
                );
            }
        };
        let mut outcome = Outcome::default();
        let mut handles = Vec::new();
        for w in workers {
            match w {
                Ok(h) => handles.push(h),
                Err(e) => {
                    queue.stop();
                    eprintln!("firehose-fanout: cannot start a worker thread: {e}");
                }
            }
        }
        let mut stopped = false;
        while !handles.iter().all(|h| h.is_finished()) {
            if !stopped && sys::interrupted() {
                stopped = true;
                pb.suspend(|| eprintln!("firehose-fanout: interrupted: finishing the flushes in progress (Ctrl-C again to quit now)"));
                queue.stop();
            }
            if run.verbose > 0 {
                print_lines(&mut tail, &pb);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        for h in handles {
            match h.join() {
                Ok(o) => outcome.merge(o),
                Err(_) => eprintln!("firehose-fanout: a worker thread panicked"),
            }
        }
        let produced = match producer.join() {
            Ok(r) => r,
            Err(_) => Err(anyhow!("the input thread panicked")),
        };
        (produced, outcome)
    });
    let elapsed = outcome
        .finished_at
        .map_or_else(|| t0.elapsed(), |at| at.saturating_duration_since(t0));
    let sec1 = unix_now();
    let usage1 = sys::process();
    let emu_cpu = sys::threads_cpu("firehose-emulat").saturating_sub(emu_cpu0);
    pb.finish_and_clear();

    ins.exit();
    drop(plugin);
    if run.verbose > 0 {
        print_lines(&mut tail, &pb);
    }
    let produced: ProduceStats = produced?;
    // Left in the queue, or read but never packed into a chunk when the run stopped.
    let (_, queued) = queue.leftover();
    let failed = outcome.error_records + outcome.given_up_records;
    let unsent = produced
        .records
        .saturating_sub(outcome.acked_records + failed)
        .max(queued);

    // Figures.
    let stats_after = match (&emulator, &endpoint) {
        (Some(e), _) => Some(e.stats()),
        (None, Some(ep)) if stats_before.is_some() => emu::fetch_stats(ep),
        _ => None,
    };
    let (errors, warnings) = plugin::count_problems();
    let mut latencies = outcome.latencies.clone();
    latencies.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let cpu = usage1.cpu.saturating_sub(usage0.cpu);
    let plugin_cpu = cpu.saturating_sub(emu_cpu).saturating_sub(produced.cpu);
    let secs = elapsed.as_secs_f64().max(1e-9);
    let mut summary = Summary {
        target: target_name.to_string(),
        endpoint: endpoint.clone(),
        plugin: plugin_path.display().to_string(),
        inputs: run.inputs.iter().map(Input::describe).collect(),
        workers: run.engine.workers,
        tag: run.engine.tag.clone(),
        records_in: produced.records,
        records_acked: outcome.acked_records,
        records_failed: failed,
        records_unsent: unsent,
        chunks: produced.chunks,
        chunk_bytes: produced.chunk_bytes,
        flushes: outcome.flushes,
        flb_ok: outcome.answered_ok,
        flb_retry: outcome.answered_retry,
        flb_error: outcome.answered_error,
        chunks_given_up: outcome.given_up_chunks,
        elapsed_seconds: elapsed.as_secs_f64(),
        records_per_second: outcome.acked_records as f64 / secs,
        mb_per_second: produced.chunk_bytes as f64 / 1e6 / secs,
        flush_latency_ms: Latency {
            p50: ms(engine::quantile(&latencies, 0.5)),
            p99: ms(engine::quantile(&latencies, 0.99)),
            max: ms(latencies.last().copied().unwrap_or_default()),
        },
        flush_stack_peak_bytes: outcome.max_stack_bytes,
        flush_stack_size: outcome.stack_size,
        cpu_seconds: cpu.as_secs_f64(),
        cpu_seconds_emulator: emu_cpu.as_secs_f64(),
        cpu_seconds_input: produced.cpu.as_secs_f64(),
        cpu_seconds_plugin: plugin_cpu.as_secs_f64(),
        cpu_seconds_per_million_records: (outcome.acked_records > 0)
            .then(|| plugin_cpu.as_secs_f64() * 1e6 / outcome.acked_records as f64),
        peak_rss_bytes: usage1.max_rss_bytes,
        plugin_errors: errors,
        plugin_warnings: warnings,
        interrupted: sys::interrupted(),
        ..Default::default()
    };
    if let Some(after) = &stats_after {
        let delta = summary::stats_delta(stats_before.as_ref(), after);
        summary.set_streams(&delta, &show_streams);
        if let Some(b) = summary.delivered_bytes {
            summary.mb_per_second = b as f64 / 1e6 / secs;
        }
    }
    let streams: Vec<String> = summary.streams.iter().map(|s| s.name.clone()).collect();
    Ok(Done {
        summary,
        emulator,
        stats: stats_after,
        streams,
        seconds: (sec0, sec1),
    })
}

/// `replay` from its arguments.
pub fn run(args: ReplayArgs) -> Result<i32> {
    let inputs: Vec<Input> = if let Some(records) = args.sample {
        vec![Input::Sample { records }]
    } else {
        match (args.generate, args.files.is_empty()) {
            (Some(count), _) => vec![Input::Generate {
                count,
                record_size: usize::try_from(args.record_size).context("--record-size is too large")?,
            }],
            (None, false) => args
                .files
                .iter()
                .map(|p| Input::File {
                    path: p.clone(),
                    format: args.format,
                })
                .collect(),
            (None, true) => bail!("nothing to replay: give input files (JSON lines, text lines or raw chunks), --generate N or --sample N"),
        }
    };
    if args.chunk_records == 0 {
        bail!("--chunk-records must be at least 1");
    }
    let target = match args.emulate_streams {
        Some(n) => {
            let names = emu::stream_names(&[], Some(n), &args.emulate_prefix)?;
            let mut config = EmulatorConfig {
                streams: emu::specs(&names),
                output_dir: args.out.clone(),
                // The figures come from the counters; keeping records would only cost memory.
                record_retention: Some(0),
                ..Default::default()
            };
            args.emu.apply(&mut config);
            Target::InProcess {
                config: Box::new(config),
                outage: args.emu.outage(),
            }
        }
        None => {
            if args.emu.any_given() {
                bail!("emulator quota/fault flags need --emulate-streams N (for a separate emulator, give them to `firehose-fanout emulate`)");
            }
            match prop(&args.props, "endpoint") {
                Some(e) => Target::Endpoint(e.to_string()),
                None => Target::Aws,
            }
        }
    };
    let workers = match (args.workers, prop(&args.props, "workers")) {
        (Some(w), _) => w,
        (None, Some(w)) => w
            .parse()
            .map_err(|_| anyhow!("workers = '{w}' is not a number of workers"))?,
        (None, None) => 2,
    };
    let retry_limit = match (args.retry_limit, prop(&args.props, "retry_limit")) {
        (Some(r), _) => r,
        (None, Some(r)) => units::parse_retry_limit(r).map_err(|e| anyhow!(e))?,
        (None, None) => RetryLimit::Limited(1),
    };
    let total_records = args.generate.or(args.sample);
    let want_timeline = args.timeline.clone();
    let run = Run {
        inputs,
        limits: ChunkLimits {
            max_bytes: usize::try_from(args.chunk_size).unwrap_or(usize::MAX),
            max_records: args.chunk_records,
            flush_interval: args.flush_interval,
        },
        rate: args.rate,
        engine: EngineOptions {
            workers,
            retry_limit,
            retry_wait: args.retry_wait,
            retry_wait_max: Duration::from_secs(30).max(args.retry_wait),
            tag: args.tag.clone(),
            mem_buf_limit: args
                .mem_buf_limit
                .map(|l| usize::try_from(l).unwrap_or(usize::MAX)),
        },
        plugin: args.plugin.clone(),
        props: args.props.clone(),
        target,
        verbose: args.verbose,
        progress: !args.no_progress,
        total_records,
    };
    let done = execute(run)?;
    if let Some(path) = &want_timeline {
        match &done.stats {
            Some(stats) => summary::write_timeline(path, stats, &done.streams, done.seconds.0, done.seconds.1)?,
            None => eprintln!(
                "firehose-fanout: no timeline written: the endpoint is not the emulator (no GET /stats)"
            ),
        }
    }
    let s = &done.summary;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(s).context("cannot write JSON")?
        );
    } else {
        println!(
            "replayed {} through {} → {}",
            s.inputs.join(", "),
            s.plugin,
            match (&s.endpoint, s.target.as_str()) {
                (Some(e), "emulator") => format!("in-process emulator {e}"),
                (Some(e), _) => e.clone(),
                (None, _) => "AWS".to_string(),
            }
        );
        print!("{}", s.table());
    }
    if let Some(e) = done.emulator {
        if let Err(err) = e.flush_output() {
            eprintln!("firehose-fanout: cannot write the emulator's output: {err}");
        }
        e.shutdown();
    }
    if s.records_failed > 0 || s.records_unsent > 0 {
        eprintln!(
            "firehose-fanout: {} of {} records were not delivered",
            units::int(s.records_failed + s.records_unsent),
            units::int(s.records_in)
        );
        return Ok(3);
    }
    Ok(0)
}
