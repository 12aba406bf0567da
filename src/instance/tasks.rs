//! The instance's background tasks: finding streams by prefix, learning each stream's
//! destination (for `aggregation auto`), and pushing metrics or summary lines.

use crate::config::Aggregation;
use crate::delivery::Context;
use crate::firehose::discover::{describe, discover, Reader};
use crate::schedule::{Packing, Router};
use crate::telemetry::log::{Level, Logger};
use crate::telemetry::metrics::{Counters, Reporter, Snapshot};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What the stream tasks need: the control-plane client, the streams, the log.
pub(super) struct Streams {
    pub control: aws_sdk_firehose::Client,
    pub router: Arc<Router>,
    pub log: Logger,
    pub aggregation: Aggregation,
    /// `discovery_interval`.
    pub interval: Duration,
    /// How many streams are configured by name.
    pub configured: usize,
    /// Records are raw text (`log_key`), not JSON objects.
    pub raw_text: bool,
    /// Firehose records are compressed (`compression`).
    pub compressed: bool,
}

impl Streams {
    /// Describes the configured streams (all at once) to decide, per stream, whether to
    /// aggregate (`aggregation auto`). Returns the streams that could not be described: they
    /// do not aggregate until they are.
    pub async fn learn_destinations(&self, names: &[String]) -> Vec<String> {
        let mut calls = tokio::task::JoinSet::new();
        for name in names {
            let (client, name) = (self.control.clone(), name.clone());
            calls.spawn(async move {
                let d = describe(&client, &name).await;
                (name, d)
            });
        }
        let mut unknown = Vec::new();
        while let Some(joined) = calls.join_next().await {
            let Ok((name, d)) = joined else { continue };
            match d {
                Ok(Some(d)) => self.set_packing(&name, d.reader),
                Ok(None) => {
                    self.log.warn(format_args!(
                        "delivery stream {name} does not exist (yet): records go to the other streams until it does"
                    ));
                    unknown.push(name);
                }
                Err(e) => {
                    self.log.info(format_args!(
                        "aggregation is off for {name} until it can be described ({e})"
                    ));
                    unknown.push(name);
                }
            }
        }
        unknown
    }

    /// Packs records for what the stream's destination does with them.
    fn set_packing(&self, name: &str, reader: Reader) {
        let packing = reader.packing(self.raw_text, self.compressed);
        self.router.set_packing(name, packing);
        let decision = match packing {
            Packing::Single => "one log record per Firehose record".to_string(),
            Packing::Aggregate { max_members: None } => "aggregated".to_string(),
            Packing::Aggregate {
                max_members: Some(m),
            } => format!("aggregates of at most {m} records"),
        };
        self.log.info(format_args!(
            "delivery stream {name}: {decision} ({})",
            reader.reason()
        ));
    }

    /// Describes `unknown` streams again, after 1 s and then twice as long each time up to
    /// `discovery_interval` (or at once when a stream answers again), until each is known:
    /// the aggregation decision rests on what a stream is, never on a call that failed once
    /// (a stream that stays unaggregated bills every small record as 5 KB).
    pub async fn learn_until_known(self: Arc<Self>, mut unknown: Vec<String>) {
        let mut delay = Duration::from_secs(1);
        while !unknown.is_empty() {
            // Or as soon as a stream answers again: the endpoint is back, and records
            // should not go unaggregated for long.
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = self.router.recovered.notified() => {}
            }
            delay = (delay * 2).min(self.interval.max(Duration::from_secs(1)));
            let before = unknown.len();
            unknown = self.learn_destinations(&unknown).await;
            if unknown.len() < before {
                self.log.info(format_args!(
                    "delivery stream destinations known now: {} of {} still to describe",
                    unknown.len(),
                    self.configured
                ));
            }
        }
    }

    /// One refresh: updates the router and logs who joined and left.
    pub async fn refresh(&self, prefix: &str) -> Result<(), String> {
        let known: Vec<String> = self
            .router
            .streams()
            .iter()
            .filter(|s| !s.configured)
            .map(|s| s.name.clone())
            .collect();
        let found = discover(&self.control, prefix, &known).await?;
        let names: Vec<String> = found.iter().map(|(n, _)| n.clone()).collect();
        let (joined, left) = self.router.set_discovered(&names);
        if self.aggregation == Aggregation::Auto {
            for (name, d) in &found {
                if let Some(d) = d {
                    self.set_packing(name, d.reader);
                }
            }
        }
        if !joined.is_empty() {
            self.log.info(format_args!(
                "delivery streams joined (prefix '{prefix}'): {}",
                joined.join(", ")
            ));
        }
        if !left.is_empty() {
            self.log.info(format_args!(
                "delivery streams left (no longer listed or not ACTIVE): {}",
                left.join(", ")
            ));
        }
        Ok(())
    }

    /// Refreshes every `interval` until the task is aborted. Failures keep the current set, are
    /// logged once per run of failures, and are tried again sooner (1 s, doubling up to
    /// `interval`), so streams are found soon after the endpoint answers.
    pub async fn run(self: Arc<Self>, prefix: String, failing: bool) {
        let mut failing = failing;
        let mut retry = Duration::from_secs(1);
        loop {
            tokio::time::sleep(if failing {
                retry.min(self.interval)
            } else {
                self.interval
            })
            .await;
            match self.refresh(&prefix).await {
                Ok(()) => {
                    if failing {
                        self.log.info(format_args!("stream discovery works again"));
                    }
                    failing = false;
                    retry = Duration::from_secs(1);
                }
                Err(e) => {
                    if !failing {
                        self.log.warn(format_args!(
                            "stream discovery failed, keeping the current streams: {e}"
                        ));
                    }
                    failing = true;
                    retry = (retry * 2).min(self.interval);
                }
            }
        }
    }
}

/// What the metrics task needs: the counters, the streams, where to report.
pub(super) struct Telemetry {
    pub router: Arc<Router>,
    pub counters: Arc<Counters>,
    pub reporter: Option<Arc<Reporter>>,
    pub log: Logger,
    pub interval: Duration,
    pub summary: Duration,
}

impl Telemetry {
    /// Pushes every counter and gauge once (no-op without a reporter).
    pub fn push(&self) {
        let Some(r) = &self.reporter else { return };
        let quota = self.router.options().quota;
        let gauges: Vec<(String, usize, f64)> = self
            .router
            .streams()
            .iter()
            .map(|s| (s.name.clone(), s.in_flight(), s.effective_rate(quota).bytes))
            .collect();
        r.push(&self.counters, &self.router.all_stats(), &gauges);
    }

    /// Pushes metrics every `interval`, or logs a summary every `summary` when there is no
    /// reporter, until aborted.
    pub async fn run(self: Arc<Self>) {
        if self.reporter.is_some() {
            loop {
                self.push();
                tokio::time::sleep(self.interval).await;
            }
        }
        let mut last = Snapshot::take(&self.counters, &self.router.all_stats());
        let mut since = Instant::now();
        loop {
            tokio::time::sleep(self.summary).await;
            let now = Snapshot::take(&self.counters, &self.router.all_stats());
            if now.records != last.records || now.throttled != last.throttled {
                self.log.log(
                    Level::Info,
                    format_args!("{}", now.since(&last, since.elapsed())),
                );
            }
            last = now;
            since = Instant::now();
        }
    }

    /// A last push, then no more calls: the host's metrics context is going away.
    pub fn finish(&self) {
        self.push();
        if let Some(r) = &self.reporter {
            r.close();
        }
    }
}

/// Group commit of the journal: one `fdatasync` per interval for every entry written in it.
pub(super) async fn sync_journal(ctx: Arc<Context>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let c = ctx.clone();
        let _ = tokio::task::spawn_blocking(move || {
            if let Some(j) = c.delivered.journal() {
                j.sync();
            }
        })
        .await;
    }
}
