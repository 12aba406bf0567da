//! Emulator settings shared by `emulate` and `replay --emulate-streams`, and reading a
//! running emulator's `GET /stats`.

use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use clap::Args;
use firehose_emulator::{EmulatorConfig, Quota, Stats, StreamSpec};

use crate::units;

/// Per-stream quotas and fault injection of an emulator.
#[derive(Args, Debug, Clone, Default)]
pub struct EmuFlags {
    /// Per-stream quota: records per second.
    #[arg(long, value_name = "N", value_parser = units::parse_rate, help_heading = "Emulator quotas")]
    pub quota_records: Option<f64>,
    /// Per-stream quota: bytes per second (e.g. 1MiB).
    #[arg(long, value_name = "SIZE", value_parser = units::parse_size_f64, help_heading = "Emulator quotas")]
    pub quota_bytes: Option<f64>,
    /// Per-stream quota: PutRecordBatch requests per second.
    #[arg(long, value_name = "N", value_parser = units::parse_rate, help_heading = "Emulator quotas")]
    pub quota_requests: Option<f64>,
    /// Over quota, reject the whole request (default: only the records over the quota
    /// fail, with ServiceUnavailableException).
    #[arg(long, help_heading = "Emulator quotas")]
    pub quota_whole_request: bool,

    /// Probability that an accepted record fails anyway (per-record ErrorCode).
    #[arg(long, value_name = "RATE", value_parser = units::parse_probability, help_heading = "Emulator faults")]
    pub fail_records: Option<f64>,
    /// Probability that a whole request fails with a 5xx.
    #[arg(long, value_name = "RATE", value_parser = units::parse_probability, help_heading = "Emulator faults")]
    pub fail_requests: Option<f64>,
    /// HTTP status of those failures (default 500).
    #[arg(long, value_name = "STATUS", value_parser = clap::value_parser!(u16).range(400..600), help_heading = "Emulator faults")]
    pub fail_status: Option<u16>,
    /// Latency added to every request (e.g. 50ms).
    #[arg(long, value_name = "DURATION", value_parser = units::parse_duration, help_heading = "Emulator faults")]
    pub latency: Option<Duration>,
    /// Random extra latency, up to this much.
    #[arg(long, value_name = "DURATION", value_parser = units::parse_duration, help_heading = "Emulator faults")]
    pub latency_jitter: Option<Duration>,
    /// Probability that a connection is dropped without an answer.
    #[arg(long, value_name = "RATE", value_parser = units::parse_probability, help_heading = "Emulator faults")]
    pub reset_rate: Option<f64>,
    /// An outage of every stream (503 to everything) lasting this long...
    #[arg(long, value_name = "DURATION", value_parser = units::parse_duration, help_heading = "Emulator faults")]
    pub outage_for: Option<Duration>,
    /// ...starting this long after the emulator starts (default at once).
    #[arg(long, value_name = "DURATION", value_parser = units::parse_duration, requires = "outage_for", help_heading = "Emulator faults")]
    pub outage_after: Option<Duration>,
    /// Seed of the fault injection's random generator (repeatable runs).
    #[arg(long, value_name = "N", help_heading = "Emulator faults")]
    pub seed: Option<u64>,

    /// Output folder buffer size hint in MiB (an object is written when a stream's
    /// buffer reaches it).
    #[arg(long, value_name = "MIB", value_parser = clap::value_parser!(u32).range(1..=128), help_heading = "Emulator output")]
    pub buffer_size: Option<u32>,
    /// Output folder buffer interval hint (e.g. 60s).
    #[arg(long, value_name = "DURATION", value_parser = units::parse_duration, help_heading = "Emulator output")]
    pub buffer_interval: Option<Duration>,
}

impl EmuFlags {
    /// Whether any quota or fault flag was given.
    pub fn any_given(&self) -> bool {
        self.quota().is_some()
            || self.fail_records.is_some()
            || self.fail_requests.is_some()
            || self.fail_status.is_some()
            || self.latency.is_some()
            || self.latency_jitter.is_some()
            || self.reset_rate.is_some()
            || self.outage_for.is_some()
            || self.seed.is_some()
            || self.buffer_size.is_some()
            || self.buffer_interval.is_some()
    }

    /// The per-stream quota, if any quota flag was given.
    pub fn quota(&self) -> Option<Quota> {
        if self.quota_records.is_none()
            && self.quota_bytes.is_none()
            && self.quota_requests.is_none()
            && !self.quota_whole_request
        {
            return None;
        }
        Some(Quota {
            records_per_second: self.quota_records,
            bytes_per_second: self.quota_bytes,
            requests_per_second: self.quota_requests,
            whole_request: self.quota_whole_request,
        })
    }

    /// Applies the flags given on top of `config` (streams already in it get the quota).
    pub fn apply(&self, config: &mut EmulatorConfig) {
        if let Some(q) = self.quota() {
            for s in &mut config.streams {
                s.quota = Some(q.clone());
            }
        }
        let f = &mut config.faults;
        if let Some(v) = self.fail_records {
            f.record_failure_rate = v;
        }
        if let Some(v) = self.fail_requests {
            f.request_failure_rate = v;
        }
        if let Some(v) = self.fail_status {
            f.request_failure_status = v;
        }
        if let Some(v) = self.latency {
            f.latency = v;
        }
        if let Some(v) = self.latency_jitter {
            f.latency_jitter = v;
        }
        if let Some(v) = self.reset_rate {
            f.reset_rate = v;
        }
        if self.seed.is_some() {
            config.seed = self.seed;
        }
        if let Some(v) = self.buffer_size {
            config.buffer_size_mib = v;
        }
        if let Some(v) = self.buffer_interval {
            config.buffer_interval = v;
        }
    }

    /// When the outage starts (after the emulator's start) and how long it lasts.
    pub fn outage(&self) -> Option<(Duration, Duration)> {
        self.outage_for
            .map(|d| (self.outage_after.unwrap_or(Duration::ZERO), d))
    }

    /// A short description of quotas and faults for the banner, empty when none.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(q) = self.quota() {
            let mut qs = Vec::new();
            if let Some(r) = q.records_per_second {
                qs.push(format!("{r} records/s"));
            }
            if let Some(b) = q.bytes_per_second {
                qs.push(format!("{}/s", units::bytes(b as u64)));
            }
            if let Some(r) = q.requests_per_second {
                qs.push(format!("{r} requests/s"));
            }
            parts.push(format!(
                "quota {} per stream{}",
                qs.join(", "),
                if q.whole_request {
                    " (whole request)"
                } else {
                    ""
                }
            ));
        }
        if let Some(r) = self.fail_records {
            parts.push(format!("{} of records fail", pct(r)));
        }
        if let Some(r) = self.fail_requests {
            parts.push(format!("{} of requests fail", pct(r)));
        }
        if let Some(l) = self.latency {
            parts.push(format!("+{} latency", units::millis(l)));
        }
        if let Some(r) = self.reset_rate {
            parts.push(format!("{} of connections dropped", pct(r)));
        }
        if let Some((after, dur)) = self.outage() {
            parts.push(format!("outage of {dur:?} after {after:?}"));
        }
        parts.join(", ")
    }
}

/// `0.07` → `7%`, `0.125` → `12.5%`.
fn pct(r: f64) -> String {
    let s = format!("{:.2}", r * 100.0);
    let s = s.trim_end_matches('0').trim_end_matches('.');
    format!("{s}%")
}

/// Stream names: the `--stream` names given, else `<prefix>0 .. <prefix>N-1`.
pub fn stream_names(
    explicit: &[String],
    count: Option<usize>,
    prefix: &str,
) -> Result<Vec<String>> {
    let mut names: Vec<String> = explicit.to_vec();
    if let Some(n) = count {
        if n == 0 {
            bail!("--streams must be at least 1");
        }
        names.extend((0..n).map(|i| format!("{prefix}{i}")));
    }
    for n in &names {
        firehose_emulator::config::validate_stream_name(n)
            .map_err(|e| anyhow!("stream name {n:?}: {e}"))?;
    }
    let mut seen = std::collections::HashSet::new();
    names.retain(|n| seen.insert(n.clone()));
    Ok(names)
}

/// Stream specs for `names` (no quota yet; [`EmuFlags::apply`] adds it).
pub fn specs(names: &[String]) -> Vec<StreamSpec> {
    names.iter().map(|n| StreamSpec::new(n.as_str())).collect()
}

/// `GET <endpoint>/stats` of a running emulator over plain HTTP, `None` when the
/// endpoint does not answer like the emulator (HTTPS, refused, not JSON stats).
pub fn fetch_stats(endpoint: &str) -> Option<Stats> {
    let body = http_get(endpoint, "/stats").ok()?;
    serde_json::from_slice(&body).ok()
}

/// A GET over plain HTTP (`firehose_emulator::client` does not speak TLS: an emulator
/// in TLS mode cannot be read this way); the body of a 200 answer.
pub fn http_get(endpoint: &str, path: &str) -> Result<Vec<u8>> {
    let (status, body) = firehose_emulator::client::request(
        endpoint,
        "GET",
        path,
        &[("Accept", "application/json")],
        b"",
    )?;
    if status != 200 {
        bail!("{path} answered HTTP {status}");
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(
            stream_names(&[], Some(3), "logs-").unwrap(),
            vec!["logs-0", "logs-1", "logs-2"]
        );
        assert_eq!(
            stream_names(&["a".into(), "a".into()], None, "x").unwrap(),
            vec!["a"]
        );
        assert!(stream_names(&["bad name".into()], None, "x").is_err());
        assert!(stream_names(&[], Some(0), "x").is_err());
    }

    #[test]
    fn flags_apply() {
        let flags = EmuFlags {
            quota_records: Some(100.0),
            fail_records: Some(0.1),
            seed: Some(7),
            ..Default::default()
        };
        let mut c = EmulatorConfig {
            streams: specs(&["a".into()]),
            ..Default::default()
        };
        flags.apply(&mut c);
        assert_eq!(
            c.streams[0].quota.as_ref().unwrap().records_per_second,
            Some(100.0)
        );
        assert_eq!(c.faults.record_failure_rate, 0.1);
        assert_eq!(c.seed, Some(7));
        assert!(flags.any_given());
        assert!(!EmuFlags::default().any_given());
    }

    #[test]
    fn percentages() {
        assert_eq!(pct(0.07), "7%");
        assert_eq!(pct(0.125), "12.5%");
        assert_eq!(pct(1.0), "100%");
    }
}
