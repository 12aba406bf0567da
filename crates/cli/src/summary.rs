//! The end-of-run report: a table for people, JSON for machines, and the per-second
//! timeline as CSV.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use firehose_emulator::{Stats, StreamStats};
use serde::Serialize;

use crate::units::{bytes, int};

/// Figures of one delivery stream during the run (from the emulator).
#[derive(Debug, Clone, Default, Serialize)]
pub struct StreamFigures {
    pub name: String,
    /// Firehose records accepted: log records, or aggregates of many when the plugin
    /// aggregates.
    pub firehose_records: u64,
    /// Data bytes accepted (the JSON lines).
    pub bytes: u64,
    /// What Firehose bills for them (each Firehose record rounded up to 5 KB).
    pub billed_bytes: u64,
    /// Share of all bytes delivered in the run (0..=1).
    pub share: f64,
    pub requests: u64,
    pub throttled_requests: u64,
    pub throttled_records: u64,
    pub failed_records: u64,
    pub faulted_requests: u64,
    pub rejected_requests: u64,
}

/// Flush latency quantiles in milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Latency {
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

/// Everything the run measured.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    /// `emulator` (in-process), `endpoint` (external) or `aws`.
    pub target: String,
    pub endpoint: Option<String>,
    pub plugin: String,
    pub inputs: Vec<String>,
    pub workers: usize,
    pub tag: String,
    /// Records read or generated.
    pub records_in: u64,
    /// Records in chunks the plugin answered FLB_OK.
    pub records_acked: u64,
    /// Records in chunks answered FLB_ERROR or given up after the retry limit.
    pub records_failed: u64,
    /// Records never flushed to the end because the run was interrupted.
    pub records_unsent: u64,
    pub chunks: u64,
    /// msgpack bytes of all chunks.
    pub chunk_bytes: u64,
    pub flushes: u64,
    pub flb_ok: u64,
    pub flb_retry: u64,
    pub flb_error: u64,
    pub chunks_given_up: u64,
    pub elapsed_seconds: f64,
    /// Acknowledged records per second.
    pub records_per_second: f64,
    /// Delivered JSON bytes per second (10^6) when the emulator's figures are known,
    /// else msgpack chunk bytes per second.
    pub mb_per_second: f64,
    /// Firehose records (aggregates when the plugin aggregates) and data bytes the
    /// emulator accepted during the run (absent without an emulator).
    pub firehose_records: Option<u64>,
    pub delivered_bytes: Option<u64>,
    /// What Firehose bills for the delivered records (5 KB units), from the emulator.
    pub billed_bytes: Option<u64>,
    pub throttled_requests: Option<u64>,
    pub throttled_records: Option<u64>,
    pub failed_records: Option<u64>,
    pub streams: Vec<StreamFigures>,
    pub flush_latency_ms: Latency,
    /// Peak stack use of a flush (it runs in a 64 KiB coroutine, as in Fluent Bit).
    pub flush_stack_peak_bytes: usize,
    pub flush_stack_size: usize,
    /// User + system CPU of the whole process during the run.
    pub cpu_seconds: f64,
    /// ... of which the in-process emulator's threads.
    pub cpu_seconds_emulator: f64,
    /// ... of which reading the input and packing chunks.
    pub cpu_seconds_input: f64,
    /// The rest: the plugin and the host calling it.
    pub cpu_seconds_plugin: f64,
    /// `cpu_seconds_plugin` per million acknowledged records.
    pub cpu_seconds_per_million_records: Option<f64>,
    /// Peak resident memory of the whole process (ru_maxrss), bytes.
    pub peak_rss_bytes: u64,
    pub plugin_errors: u64,
    pub plugin_warnings: u64,
    pub interrupted: bool,
}

/// `after - before`, per stream (counters only).
pub fn stats_delta(before: Option<&Stats>, after: &Stats) -> BTreeMap<String, StreamStats> {
    let zero = StreamStats::default();
    after
        .streams
        .iter()
        .map(|(name, a)| {
            let b = before.and_then(|s| s.streams.get(name)).unwrap_or(&zero);
            let d = StreamStats {
                requests: a.requests.saturating_sub(b.requests),
                received_records: a.received_records.saturating_sub(b.received_records),
                accepted_records: a.accepted_records.saturating_sub(b.accepted_records),
                accepted_bytes: a.accepted_bytes.saturating_sub(b.accepted_bytes),
                billed_bytes: a.billed_bytes.saturating_sub(b.billed_bytes),
                failed_records: a.failed_records.saturating_sub(b.failed_records),
                throttled_requests: a.throttled_requests.saturating_sub(b.throttled_requests),
                throttled_records: a.throttled_records.saturating_sub(b.throttled_records),
                rejected_requests: a.rejected_requests.saturating_sub(b.rejected_requests),
                faulted_requests: a.faulted_requests.saturating_sub(b.faulted_requests),
                objects_written: a.objects_written.saturating_sub(b.objects_written),
                object_bytes_written: a
                    .object_bytes_written
                    .saturating_sub(b.object_bytes_written),
                ..Default::default()
            };
            (name.clone(), d)
        })
        .collect()
}

impl Summary {
    /// Fills the emulator's figures for the streams in `show` (all streams with activity
    /// when `show` is empty).
    pub fn set_streams(&mut self, delta: &BTreeMap<String, StreamStats>, show: &[String]) {
        let active = |s: &StreamStats| s.requests > 0 || s.accepted_bytes > 0;
        let mut names: Vec<String> = show.to_vec();
        for (name, s) in delta {
            if active(s) && !names.contains(name) {
                names.push(name.clone());
            }
        }
        let total: u64 = names
            .iter()
            .filter_map(|n| delta.get(n))
            .map(|s| s.accepted_bytes)
            .sum();
        self.streams = names
            .iter()
            .map(|n| {
                let s = delta.get(n).cloned().unwrap_or_default();
                StreamFigures {
                    name: n.clone(),
                    firehose_records: s.accepted_records,
                    bytes: s.accepted_bytes,
                    billed_bytes: s.billed_bytes,
                    share: if total > 0 {
                        s.accepted_bytes as f64 / total as f64
                    } else {
                        0.0
                    },
                    requests: s.requests,
                    throttled_requests: s.throttled_requests,
                    throttled_records: s.throttled_records,
                    failed_records: s.failed_records,
                    faulted_requests: s.faulted_requests,
                    rejected_requests: s.rejected_requests,
                }
            })
            .collect();
        let sum = |f: fn(&StreamFigures) -> u64| self.streams.iter().map(f).sum::<u64>();
        self.firehose_records = Some(sum(|s| s.firehose_records));
        self.delivered_bytes = Some(sum(|s| s.bytes));
        self.billed_bytes = Some(sum(|s| s.billed_bytes));
        self.throttled_requests = Some(sum(|s| s.throttled_requests));
        self.throttled_records = Some(sum(|s| s.throttled_records));
        self.failed_records = Some(sum(|s| s.failed_records));
    }

    /// The table for people.
    pub fn table(&self) -> String {
        let mut t = String::new();
        let row = |t: &mut String, k: &str, v: String| {
            let _ = writeln!(t, "  {k:<15}{v}");
        };
        let mut rec = format!(
            "{} in, {} acknowledged (FLB_OK), {} failed",
            int(self.records_in),
            int(self.records_acked),
            int(self.records_failed)
        );
        if self.records_unsent > 0 {
            let _ = write!(rec, ", {} not sent (interrupted)", int(self.records_unsent));
        }
        row(&mut t, "records", rec);
        if let (Some(r), Some(b)) = (self.firehose_records, self.delivered_bytes) {
            row(
                &mut t,
                "delivered",
                format!(
                    "{} of JSON in {} Firehose record{}{} at the {} ({} stream{})",
                    bytes(b),
                    int(r),
                    if r == 1 { "" } else { "s" },
                    if r < self.records_acked {
                        " (log records aggregated)"
                    } else {
                        ""
                    },
                    if self.target == "emulator" {
                        "in-process emulator"
                    } else {
                        "emulator"
                    },
                    self.streams.len(),
                    if self.streams.len() == 1 { "" } else { "s" }
                ),
            );
            if let Some(billed) = self.billed_bytes.filter(|_| b > 0) {
                row(
                    &mut t,
                    "billed",
                    format!(
                        "{} ({:.3} × the bytes delivered: each Firehose record is billed in 5 KB units)",
                        bytes(billed),
                        billed as f64 / b as f64
                    ),
                );
            }
        } else {
            row(
                &mut t,
                "delivered",
                "unknown here: the endpoint answers no GET /stats (only the emulator does)"
                    .to_string(),
            );
        }
        row(
            &mut t,
            "throughput",
            format!(
                "{} records/s, {:.1} MB/s{} in {:.2} s",
                int(self.records_per_second.round() as u64),
                self.mb_per_second,
                if self.delivered_bytes.is_some() {
                    ""
                } else {
                    " (msgpack)"
                },
                self.elapsed_seconds
            ),
        );
        row(
            &mut t,
            "flushes",
            format!(
                "{} chunks ({} msgpack) {}: {} FLB_OK, {} FLB_RETRY, {} FLB_ERROR, {} given up",
                int(self.chunks),
                bytes(self.chunk_bytes),
                match self.workers {
                    0 => "on the engine thread (workers 0)".to_string(),
                    1 => "by 1 worker".to_string(),
                    n => format!("by {n} workers"),
                },
                int(self.flb_ok),
                int(self.flb_retry),
                int(self.flb_error),
                int(self.chunks_given_up)
            ),
        );
        row(
            &mut t,
            "flush latency",
            format!(
                "p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms{}",
                self.flush_latency_ms.p50,
                self.flush_latency_ms.p99,
                self.flush_latency_ms.max,
                if self.flush_stack_size > 0 {
                    format!(
                        " (stack peak {:.1} KiB of {} KiB)",
                        self.flush_stack_peak_bytes as f64 / 1024.0,
                        self.flush_stack_size / 1024
                    )
                } else {
                    String::new()
                }
            ),
        );
        if let (Some(tr), Some(trec), Some(f)) = (
            self.throttled_requests,
            self.throttled_records,
            self.failed_records,
        ) {
            row(
                &mut t,
                "throttles",
                format!(
                    "{} requests and {} Firehose records throttled; {} answered with an ErrorCode",
                    int(tr),
                    int(trec),
                    int(f)
                ),
            );
        }
        let mut cpu = format!("{:.2} s user+sys", self.cpu_seconds);
        if let Some(per_m) = self.cpu_seconds_per_million_records {
            let _ = write!(
                cpu,
                "; plugin+host {:.2} s = {:.1} s per million records",
                self.cpu_seconds_plugin, per_m
            );
        }
        if self.cpu_seconds_emulator > 0.0 {
            let _ = write!(cpu, "; emulator {:.2} s", self.cpu_seconds_emulator);
        }
        let _ = write!(cpu, "; input {:.2} s", self.cpu_seconds_input);
        row(&mut t, "cpu", cpu);
        row(
            &mut t,
            "peak memory",
            format!(
                "{} (ru_maxrss of the whole process)",
                bytes(self.peak_rss_bytes)
            ),
        );
        row(
            &mut t,
            "plugin log",
            format!(
                "{} error{}, {} warning{}{}",
                self.plugin_errors,
                if self.plugin_errors == 1 { "" } else { "s" },
                self.plugin_warnings,
                if self.plugin_warnings == 1 { "" } else { "s" },
                if self.plugin_errors + self.plugin_warnings > 0 {
                    " (-v shows them)"
                } else {
                    ""
                }
            ),
        );
        if !self.streams.is_empty() {
            let w = self
                .streams
                .iter()
                .map(|s| s.name.len())
                .max()
                .unwrap_or(6)
                .max(6);
            let _ = writeln!(t);
            let _ = writeln!(
                t,
                "  {:<w$}  {:>11}  {:>6}  {:>10}  {:>9}  {:>10}  {:>8}",
                "stream", "bytes", "share", "records", "requests", "throttled", "failed"
            );
            for s in &self.streams {
                let _ = writeln!(
                    t,
                    "  {:<w$}  {:>11}  {:>5.1}%  {:>10}  {:>9}  {:>10}  {:>8}",
                    s.name,
                    bytes(s.bytes),
                    s.share * 100.0,
                    int(s.firehose_records),
                    int(s.requests),
                    int(s.throttled_requests + s.throttled_records),
                    int(s.failed_records)
                );
            }
        }
        t
    }
}

/// Writes `unix_time,elapsed_s,<stream>...,total` rows of delivered bytes per second,
/// every second from `start` to `end` (unix seconds, inclusive), from the emulator's
/// per-second series.
pub fn write_timeline(
    path: &Path,
    stats: &Stats,
    streams: &[String],
    start: u64,
    end: u64,
) -> Result<()> {
    let mut by_stream: Vec<BTreeMap<u64, u64>> = Vec::new();
    for name in streams {
        let map = stats
            .streams
            .get(name)
            .map(|s| {
                s.series
                    .iter()
                    .filter(|p| p.t >= start && p.t <= end)
                    .map(|p| (p.t, p.bytes))
                    .collect()
            })
            .unwrap_or_default();
        by_stream.push(map);
    }
    let mut csv = String::from("unix_time,elapsed_s");
    for n in streams {
        csv.push(',');
        csv.push_str(n);
    }
    csv.push_str(",total\n");
    for t in start..=end {
        let _ = write!(csv, "{t},{}", t - start);
        let mut total = 0;
        for m in &by_stream {
            let b = m.get(&t).copied().unwrap_or(0);
            total += b;
            let _ = write!(csv, ",{b}");
        }
        let _ = writeln!(csv, ",{total}");
    }
    std::fs::write(path, csv)
        .with_context(|| format!("cannot write the timeline {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use firehose_emulator::SeriesPoint;

    #[test]
    fn delta_and_shares() {
        let mut before = Stats::default();
        before.streams.insert(
            "a".into(),
            StreamStats {
                accepted_records: 10,
                accepted_bytes: 100,
                ..Default::default()
            },
        );
        let mut after = Stats::default();
        after.streams.insert(
            "a".into(),
            StreamStats {
                accepted_records: 40,
                accepted_bytes: 400,
                requests: 2,
                ..Default::default()
            },
        );
        after.streams.insert(
            "b".into(),
            StreamStats {
                accepted_records: 10,
                accepted_bytes: 100,
                requests: 1,
                ..Default::default()
            },
        );
        after.streams.insert("idle".into(), StreamStats::default());
        let d = stats_delta(Some(&before), &after);
        let mut s = Summary::default();
        s.set_streams(&d, &[]);
        assert_eq!(s.streams.len(), 2);
        assert_eq!(s.firehose_records, Some(40));
        assert!((s.streams[0].share - 0.75).abs() < 1e-9);
        assert!(s.table().contains("75.0%"));
    }

    #[test]
    fn timeline_csv() {
        let mut stats = Stats::default();
        stats.streams.insert(
            "a".into(),
            StreamStats {
                series: vec![
                    SeriesPoint {
                        t: 99,
                        records: 1,
                        bytes: 7,
                    },
                    SeriesPoint {
                        t: 100,
                        records: 1,
                        bytes: 5,
                    },
                    SeriesPoint {
                        t: 102,
                        records: 2,
                        bytes: 9,
                    },
                ],
                ..Default::default()
            },
        );
        let dir = std::env::temp_dir().join(format!("ffcli-timeline-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.csv");
        write_timeline(&path, &stats, &["a".into(), "b".into()], 100, 102).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            "unix_time,elapsed_s,a,b,total\n100,0,5,0,5\n101,1,0,0,0\n102,2,9,0,9\n"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
