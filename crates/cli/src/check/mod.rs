//! `firehose-fanout check`: would the plugin deliver with this configuration?
//!
//! Reads the plugin's `[OUTPUT]`s (classic or YAML file, or `-p key=value`), validates them
//! with the plugin's own configuration code, then asks AWS with the plugin's own clients:
//! credentials (which source won), ListDeliveryStreams, discovery by prefix, each stream's
//! DescribeDeliveryStream, and a PutRecordBatch without records. Exit status: 0 every output
//! would deliver, 1 one would not, 2 the configuration is wrong.

mod config_file;
mod probe;
mod properties;
mod report;

use std::path::PathBuf;

use clap::Args;
use serde::Serialize;

use crate::units;
use config_file::{OutputSection, PLUGIN};
use properties::PluginView;
use report::OutputReport;

/// Exit status when the configuration itself is wrong.
pub const EXIT_CONFIG: i32 = 2;
/// Exit status when an output would not deliver.
pub const EXIT_WOULD_NOT_DELIVER: i32 = 1;

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// Fluent Bit configuration file: classic (`[OUTPUT]` sections) or YAML (`.yaml`/`.yml`,
    /// `pipeline: outputs:`). Every output with `Name firehose_fanout` is checked.
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Plugin property, as on Fluent Bit's command line (repeatable): -p region=eu-west-1.
    /// Alone, they make the one output to check; with -c, they override every output's.
    #[arg(short = 'p', long = "property", value_name = "KEY=VALUE", value_parser = units::parse_property)]
    pub properties: Vec<(String, String)>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// The report of a whole check (`--json`).
#[derive(Debug, Serialize)]
struct Report {
    outputs: Vec<OutputReport>,
    would_deliver: bool,
}

/// Runs the check; returns the exit status.
pub fn run(args: CheckArgs) -> anyhow::Result<i32> {
    let sections = match sections(&args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("firehose-fanout check: {e}");
            return Ok(EXIT_CONFIG);
        }
    };
    // Every output's configuration first: one bad value is a configuration error (exit 2),
    // whatever AWS would say about the others.
    let mut checked = Vec::with_capacity(sections.len());
    let mut bad = false;
    for (index, section) in sections {
        let view = PluginView::new(&section.properties, &args.properties);
        let name = view
            .alias
            .clone()
            .unwrap_or_else(|| format!("{PLUGIN}.{index}"));
        match view.config() {
            Ok(cfg) => checked.push((name, section, view, cfg)),
            Err(e) => {
                eprintln!(
                    "firehose-fanout check: {name} ({}): configuration error: {e}",
                    section.origin
                );
                bad = true;
            }
        }
    }
    if bad {
        return Ok(EXIT_CONFIG);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let outputs: Vec<OutputReport> = checked
        .into_iter()
        .map(|(name, section, view, cfg)| {
            let probe = runtime.block_on(probe::probe(&cfg));
            report::build(
                name,
                section.origin,
                &section.unset_vars,
                &view,
                &cfg,
                &probe,
            )
        })
        .collect();
    let would_deliver = outputs.iter().all(|o| o.would_deliver);
    if args.json {
        let report = Report {
            outputs,
            would_deliver,
        };
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for o in &outputs {
            println!("{}", report::text(o));
        }
        let ok = outputs.iter().filter(|o| o.would_deliver).count();
        println!(
            "{ok} of {} output{} would deliver",
            outputs.len(),
            if outputs.len() == 1 { "" } else { "s" }
        );
    }
    Ok(if would_deliver {
        0
    } else {
        EXIT_WOULD_NOT_DELIVER
    })
}

/// The outputs to check, with their index among all outputs.
fn sections(args: &CheckArgs) -> Result<Vec<(usize, OutputSection)>, String> {
    let Some(path) = &args.config else {
        if args.properties.is_empty() {
            return Err(
                "nothing to check: give a Fluent Bit configuration (-c fluent-bit.conf) or the plugin's properties (-p region=... -p delivery_streams=...)"
                    .into(),
            );
        }
        return Ok(vec![(
            0,
            OutputSection {
                origin: "-p".into(),
                ..Default::default()
            },
        )]);
    };
    let outputs = config_file::read(path).map_err(|e| e.to_string())?;
    if outputs.ours.is_empty() {
        return Err(format!(
            "{}: no output with name {PLUGIN} (of {} output{} in the file)",
            path.display(),
            outputs.total,
            if outputs.total == 1 { "" } else { "s" }
        ));
    }
    Ok(outputs.ours)
}
