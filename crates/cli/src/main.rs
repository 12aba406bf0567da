//! `firehose-fanout`: try, configure and measure the firehose-fanout Fluent Bit plugin
//! without AWS and without Fluent Bit.
//!
//! * `demo`: an emulated Firehose, the plugin fed with a bundled sample, and a check that
//!   every record arrived exactly once.
//! * `emulate`: a Firehose-compatible endpoint on 127.0.0.1 (crates/emulator).
//! * `replay`: the plugin loaded through Fluent Bit's ABI (crates/flb-host), fed with
//!   chunks from files or a generator by N workers, with a summary of what it did.
//! * `check`: reads a Fluent Bit configuration's firehose_fanout outputs with the plugin's
//!   own code and asks AWS whether they would deliver (credentials, IAM, streams).

mod check;
mod demo;
mod emu;
mod emulate;
mod engine;
mod input;
mod msgpack;
mod plugin;
mod replay;
mod summary;
mod sys;
mod units;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "firehose-fanout",
    version,
    about = "Try, configure and measure the firehose-fanout Fluent Bit plugin, with a local Firehose emulator",
    after_help = "Start with `firehose-fanout demo`. Exit status: 0 success, 1 error (check: an output would not deliver), 2 usage or configuration error, 3 replay finished but some records were not delivered."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Emulator + plugin + a bundled sample of real Kubernetes records; checks that every
    /// record arrived exactly once.
    Demo(demo::DemoArgs),
    /// Run a Firehose-compatible endpoint on 127.0.0.1 until Ctrl-C / SIGTERM.
    Emulate(Box<emulate::EmulateArgs>),
    /// Load the plugin as Fluent Bit does, feed it records from files or a generator, and
    /// measure it.
    Replay(Box<replay::ReplayArgs>),
    /// Would the plugin deliver with this configuration? Reads its outputs (-c FILE, classic
    /// or YAML, or -p key=value), then checks credentials, IAM actions and streams.
    /// Exit status: 0 it would, 1 it would not, 2 the configuration is wrong.
    Check(check::CheckArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo(a) => demo::run(a),
        Command::Emulate(a) => emulate::run(*a),
        Command::Replay(a) => replay::run(*a),
        Command::Check(a) => check::run(a),
    };
    match result {
        Ok(0) => ExitCode::SUCCESS,
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(e) => {
            eprintln!(
                "firehose-fanout: error: {}",
                plugin::one_line(&format!("{e:#}"))
            );
            ExitCode::from(1)
        }
    }
}
