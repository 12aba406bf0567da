//! `firehose-fanout emulate`: the Firehose stand-in on 127.0.0.1 until Ctrl-C / SIGTERM.

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use anyhow::{anyhow, Context, Result};
use clap::Args;
use firehose_emulator::{EmulatorConfig, Server};

use crate::emu::{self, EmuFlags};

/// Default port of `emulate`.
pub const DEFAULT_PORT: u16 = 4573;

#[derive(Args, Debug)]
pub struct EmulateArgs {
    /// Port on 127.0.0.1 (0 = any free port) [default: 4573, or the config file's bind].
    #[arg(long, value_name = "PORT")]
    pub port: Option<u16>,
    /// A delivery stream (repeatable).
    #[arg(long = "stream", value_name = "NAME")]
    pub stream: Vec<String>,
    /// Create N streams named <prefix>0 .. <prefix>N-1 [default: 3 when no stream is
    /// given].
    #[arg(long, value_name = "N")]
    pub streams: Option<usize>,
    /// Name prefix of --streams.
    #[arg(long, value_name = "PREFIX", default_value = "logs-")]
    pub stream_prefix: String,
    /// S3-like output folder: <DIR>/<stream>/YYYY/MM/DD/HH/<stream>-1-YYYY-MM-DD-HH-MM-SS-<id>.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Keep at most this many accepted records per stream in memory (for GET
    /// /admin/records) [default: 10000, or the config file's].
    #[arg(long, value_name = "N")]
    pub keep_records: Option<usize>,
    /// Read the whole emulator configuration from a JSON file (firehose-emulator's
    /// EmulatorConfig); the flags given on the command line override it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub emu: EmuFlags,
}

/// Builds the configuration from the file (if any) and the flags.
pub fn config(args: &EmulateArgs) -> Result<EmulatorConfig> {
    let (mut config, from_file) = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            let c = EmulatorConfig::from_json(&text)
                .map_err(|e| anyhow!("{}: not an emulator configuration: {e}", path.display()))?;
            (c, true)
        }
        None => (EmulatorConfig::default(), false),
    };
    let count = match (
        args.streams,
        args.stream.is_empty(),
        config.streams.is_empty(),
    ) {
        (Some(n), _, _) => Some(n),
        (None, true, true) => Some(3),
        _ => None,
    };
    let names = emu::stream_names(&args.stream, count, &args.stream_prefix)?;
    if !names.is_empty() {
        // Flags name the streams: they replace the file's.
        config.streams = emu::specs(&names);
    }
    match args.port {
        Some(p) => config.bind = SocketAddr::from((Ipv4Addr::LOCALHOST, p)),
        None if !from_file => config.bind = SocketAddr::from((Ipv4Addr::LOCALHOST, DEFAULT_PORT)),
        None => {}
    }
    if args.out.is_some() {
        config.output_dir = args.out.clone();
    }
    match args.keep_records {
        Some(n) => config.record_retention = Some(n),
        None if !from_file => config.record_retention = Some(10_000),
        None => {}
    }
    args.emu.apply(&mut config);
    Ok(config)
}

pub fn run(args: EmulateArgs) -> Result<i32> {
    let config = config(&args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("firehose-emulator")
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    runtime.block_on(serve(config, &args.emu))
}

async fn serve(config: EmulatorConfig, flags: &EmuFlags) -> Result<i32> {
    let bind = config.bind;
    let out = config.output_dir.clone();
    let server = Server::bind(config.clone())
        .await
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AddrInUse => anyhow!(
                "cannot listen on {bind}: the port is in use (choose another with --port, or --port 0 for any free port)"
            ),
            _ => anyhow!("cannot listen on {bind}: {e}"),
        })?;
    let handle = server.handle();
    let endpoint = handle.endpoint();
    let names: Vec<String> = handle.stream_names();
    let mut stdout = std::io::stdout();
    let extra = flags.describe();
    writeln!(
        stdout,
        "firehose emulator listening on {endpoint} (streams: {}{}{})",
        names.join(", "),
        out.as_ref()
            .map(|d| format!("; objects in {}", d.display()))
            .unwrap_or_default(),
        if extra.is_empty() {
            String::new()
        } else {
            format!("; {extra}")
        }
    )?;
    writeln!(
        stdout,
        "point the plugin at it: -p region=us-east-1 -p endpoint={endpoint} -p delivery_streams={} (with any AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY); stop with Ctrl-C",
        names.join(",")
    )?;
    stdout.flush()?;

    if let Some((after, duration)) = flags.outage() {
        let h = handle.clone();
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            h.start_outage(None, Some(duration));
            eprintln!("firehose-fanout: outage started for {duration:?}");
        });
    }

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot watch SIGTERM")?;
    let shutdown = async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    };
    server.run(shutdown).await.context("the emulator failed")?;
    let stats = handle.stats();
    let accepted: u64 = stats.streams.values().map(|s| s.accepted_records).sum();
    let bytes: u64 = stats.streams.values().map(|s| s.accepted_bytes).sum();
    writeln!(
        stdout,
        "stopped: {} requests, {} records ({}) accepted, {} objects written{}",
        stats.requests,
        crate::units::int(accepted),
        crate::units::bytes(bytes),
        stats.objects_written,
        out.as_ref()
            .map(|d| format!(" to {}", d.display()))
            .unwrap_or_default()
    )?;
    stdout.flush()?;
    Ok(if stats.output_errors > 0 { 1 } else { 0 })
}
