//! Metrics in Fluent Bit's own endpoint (`/api/v2/metrics/prometheus`), per instance and per
//! stream, pushed from the counters every `metrics_interval`. Where the host has no
//! cmetrics functions, a summary log line every `summary_interval` instead.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
}

/// One metric: `fluentbit_firehose_fanout_<name>{labels}`.
#[derive(Debug)]
pub struct MetricDef {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: Kind,
    pub labels: &'static [&'static str],
}

const INSTANCE: &[&str] = &["name"];
const STREAM: &[&str] = &["name", "stream"];

macro_rules! metric {
    ($id:ident, $name:literal, $kind:ident, $labels:ident, $help:literal) => {
        pub static $id: MetricDef = MetricDef {
            name: $name,
            help: $help,
            kind: Kind::$kind,
            labels: $labels,
        };
    };
}

metric!(
    RECORDS,
    "records_total",
    Counter,
    STREAM,
    "Log records accepted by Firehose."
);
metric!(
    BYTES,
    "bytes_total",
    Counter,
    STREAM,
    "Bytes of log records accepted by Firehose."
);
metric!(
    BILLED,
    "billed_bytes_total",
    Counter,
    STREAM,
    "Bytes Firehose bills for the accepted records (each rounded up to 5 KB)."
);
metric!(
    THROTTLED,
    "throttled_records_total",
    Counter,
    STREAM,
    "Log records refused for the stream's quota."
);
metric!(
    FAILED,
    "failed_records_total",
    Counter,
    STREAM,
    "Log records that failed otherwise (sent again)."
);
metric!(
    REQUESTS,
    "requests_total",
    Counter,
    STREAM,
    "PutRecordBatch calls."
);
metric!(
    IN_FLIGHT,
    "in_flight_requests",
    Gauge,
    STREAM,
    "PutRecordBatch calls in flight now."
);
metric!(
    RATE,
    "rate_bytes_per_second",
    Gauge,
    STREAM,
    "The stream's effective rate as the scheduler sees it."
);
metric!(
    RETRIED,
    "retried_records_total",
    Counter,
    INSTANCE,
    "Log records sent again within a flush."
);
metric!(
    DROPPED,
    "dropped_records_total",
    Counter,
    INSTANCE,
    "Log records dropped (over 1,000 KiB, or without log_key)."
);
metric!(
    TRUNCATED,
    "truncated_records_total",
    Counter,
    INSTANCE,
    "Log records over 1,000 KiB cut to fit (oversize_policy truncate)."
);
metric!(
    MALFORMED,
    "malformed_events_total",
    Counter,
    INSTANCE,
    "Events of chunks that could not be decoded."
);

/// Counters of one stream (monotonic, for logs and metrics).
#[derive(Debug, Default)]
pub struct StreamStats {
    pub requests: AtomicU64,
    pub accepted_records: AtomicU64,
    pub accepted_bytes: AtomicU64,
    pub throttled_records: AtomicU64,
    pub throttled_requests: AtomicU64,
    /// Firehose records accepted (aggregates count once).
    pub accepted_frames: AtomicU64,
    /// What Firehose bills for the accepted records: each rounded up to 5 KB.
    pub billed_bytes: AtomicU64,
    pub failed_records: AtomicU64,
    pub failed_calls: AtomicU64,
}

/// Monotonic counters of an instance.
#[derive(Debug, Default)]
pub struct Counters {
    pub accepted_records: AtomicU64,
    pub accepted_bytes: AtomicU64,
    pub retried_records: AtomicU64,
    pub dropped_records: AtomicU64,
    pub truncated_records: AtomicU64,
    /// What Firehose bills for the accepted records (each rounded up to 5 KB).
    pub billed_bytes: AtomicU64,
    pub malformed_events: AtomicU64,
}

impl Counters {
    pub fn add_accepted(&self, records: u64, bytes: u64) {
        self.accepted_records.fetch_add(records, Ordering::Relaxed);
        self.accepted_bytes.fetch_add(bytes, Ordering::Relaxed);
    }
    pub fn add_billed(&self, bytes: u64) {
        self.billed_bytes.fetch_add(bytes, Ordering::Relaxed);
    }
    pub fn add_retried(&self, n: u64) {
        self.retried_records.fetch_add(n, Ordering::Relaxed);
    }
    pub fn add_dropped(&self, n: u64) {
        self.dropped_records.fetch_add(n, Ordering::Relaxed);
    }
    pub fn add_truncated(&self, n: u64) {
        self.truncated_records.fetch_add(n, Ordering::Relaxed);
    }
    pub fn add_malformed(&self, n: u64) {
        self.malformed_events.fetch_add(n, Ordering::Relaxed);
    }
}

/// Where metric values go (Fluent Bit's cmetrics through the FFI).
pub trait MetricsSink: Send + Sync {
    /// Adds `value` to a counter, or sets a gauge.
    fn update(&self, def: &'static MetricDef, label_values: &[&str], value: f64);
    /// No updates after this: the host's metrics context is going away.
    fn close(&self);
}

/// The last values pushed, to turn monotonic counters into increments.
#[derive(Default)]
pub struct Pusher {
    last: HashMap<(&'static str, String), u64>,
}

impl Pusher {
    fn counter(
        &mut self,
        sink: &dyn MetricsSink,
        def: &'static MetricDef,
        labels: &[&str],
        now: u64,
    ) {
        let key = (def.name, labels.join("\u{1}"));
        let before = self.last.insert(key, now).unwrap_or(0);
        // Zero increments still create the series, so every stream shows from the start.
        sink.update(def, labels, now.saturating_sub(before) as f64);
    }

    /// Pushes every counter and gauge once: the instance's counters, every stream's
    /// counters since the start (`streams`), and the gauges of the streams in use now
    /// (`gauges`: name, calls in flight, learned bytes/s).
    pub fn push(
        &mut self,
        sink: &dyn MetricsSink,
        instance: &str,
        c: &Counters,
        streams: &[(String, Arc<StreamStats>)],
        gauges: &[(String, usize, f64)],
    ) {
        let one = [instance];
        self.counter(
            sink,
            &RETRIED,
            &one,
            c.retried_records.load(Ordering::Relaxed),
        );
        self.counter(
            sink,
            &DROPPED,
            &one,
            c.dropped_records.load(Ordering::Relaxed),
        );
        self.counter(
            sink,
            &TRUNCATED,
            &one,
            c.truncated_records.load(Ordering::Relaxed),
        );
        self.counter(
            sink,
            &MALFORMED,
            &one,
            c.malformed_events.load(Ordering::Relaxed),
        );
        // Counters of every stream used since the start: one that left and joined again
        // goes on from its total, never from zero.
        for (name, st) in streams {
            let l = [instance, name.as_str()];
            self.counter(
                sink,
                &RECORDS,
                &l,
                st.accepted_records.load(Ordering::Relaxed),
            );
            self.counter(sink, &BYTES, &l, st.accepted_bytes.load(Ordering::Relaxed));
            self.counter(sink, &BILLED, &l, st.billed_bytes.load(Ordering::Relaxed));
            self.counter(
                sink,
                &THROTTLED,
                &l,
                st.throttled_records.load(Ordering::Relaxed),
            );
            self.counter(sink, &FAILED, &l, st.failed_records.load(Ordering::Relaxed));
            self.counter(sink, &REQUESTS, &l, st.requests.load(Ordering::Relaxed));
        }
        for (name, in_flight, rate) in gauges {
            let l = [instance, name.as_str()];
            sink.update(&IN_FLIGHT, &l, *in_flight as f64);
            sink.update(&RATE, &l, *rate);
        }
    }
}

/// An instance's metrics: the sink, what was pushed so far, the instance's name label.
pub struct Reporter {
    sink: Arc<dyn MetricsSink>,
    pusher: std::sync::Mutex<Pusher>,
    instance: String,
}

impl Reporter {
    pub fn new(sink: Arc<dyn MetricsSink>, instance: &str) -> Reporter {
        Reporter {
            sink,
            pusher: std::sync::Mutex::new(Pusher::default()),
            instance: instance.to_string(),
        }
    }

    pub fn push(
        &self,
        c: &Counters,
        streams: &[(String, Arc<StreamStats>)],
        gauges: &[(String, usize, f64)],
    ) {
        self.pusher.lock().unwrap_or_else(|p| p.into_inner()).push(
            self.sink.as_ref(),
            &self.instance,
            c,
            streams,
            gauges,
        );
    }

    /// No more calls after this (push the last values first).
    pub fn close(&self) {
        self.sink.close();
    }
}

/// Totals for the summary line.
pub struct Snapshot {
    pub records: u64,
    pub bytes: u64,
    pub billed: u64,
    pub throttled: u64,
    pub retried: u64,
    pub dropped: u64,
    pub per_stream: Vec<(String, u64)>,
}

impl Snapshot {
    /// Totals now, over every stream used since the start (so they never shrink).
    pub fn take(c: &Counters, streams: &[(String, Arc<StreamStats>)]) -> Snapshot {
        let sum = |f: fn(&StreamStats) -> u64| streams.iter().map(|(_, s)| f(s)).sum();
        Snapshot {
            records: sum(|s| s.accepted_records.load(Ordering::Relaxed)),
            bytes: sum(|s| s.accepted_bytes.load(Ordering::Relaxed)),
            billed: sum(|s| s.billed_bytes.load(Ordering::Relaxed)),
            throttled: sum(|s| s.throttled_records.load(Ordering::Relaxed)),
            retried: c.retried_records.load(Ordering::Relaxed),
            dropped: c.dropped_records.load(Ordering::Relaxed),
            per_stream: streams
                .iter()
                .map(|(n, s)| (n.clone(), s.accepted_records.load(Ordering::Relaxed)))
                .collect(),
        }
    }

    /// The summary line of what happened between `before` and this.
    pub fn since(&self, before: &Snapshot, over: Duration) -> String {
        let streams: Vec<String> = self
            .per_stream
            .iter()
            .map(|(n, v)| {
                let b = before
                    .per_stream
                    .iter()
                    .find(|(m, _)| m == n)
                    .map_or(0, |(_, v)| *v);
                format!("{n}={}", v.saturating_sub(b))
            })
            .collect();
        format!(
            "in the last {:.0}s: {} record(s) delivered ({} bytes, billed as {}), {} throttled, {} resent, {} dropped; per stream: {}",
            over.as_secs_f64(),
            self.records - before.records,
            self.bytes - before.bytes,
            self.billed - before.billed,
            self.throttled - before.throttled,
            self.retried - before.retried,
            self.dropped - before.dropped,
            streams.join(" ")
        )
    }
}
