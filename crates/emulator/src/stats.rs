//! Counters, per stream and for the whole emulator, served as JSON on
//! `GET /stats` and returned by [`Emulator::stats`](crate::Emulator::stats).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// How many one-second points of the time series a stream keeps (one hour).
pub const SERIES_CAPACITY: usize = 3600;

/// A snapshot of all counters.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// Unix time (seconds) the emulator started.
    pub started_at: f64,
    /// Seconds since the emulator started.
    pub uptime_seconds: f64,
    /// Firehose API requests received (all operations, all outcomes).
    pub requests: u64,
    /// Requests rejected before reaching a stream: malformed bodies, unknown
    /// operations, unknown or non-ACTIVE streams.
    pub rejected_requests: u64,
    /// Requests that failed through fault injection (outage, injected error,
    /// dropped connection), all streams included.
    pub faulted_requests: u64,
    /// Connections dropped on purpose (`reset_rate`).
    pub resets: u64,
    /// Objects written to the output folder.
    pub objects_written: u64,
    /// Bytes written to the output folder.
    pub object_bytes_written: u64,
    /// Errors while writing to the output folder.
    pub output_errors: u64,
    /// API requests by the access key id that signed them (from the SigV4
    /// `Authorization` header), to check which credentials a client used.
    #[serde(default)]
    pub access_keys: BTreeMap<String, u64>,
    /// API requests refused because their SigV4 signature did not match (only with
    /// `signing_secret`).
    #[serde(default)]
    pub invalid_signatures: u64,
    /// API requests by their `User-Agent` header.
    #[serde(default)]
    pub user_agents: BTreeMap<String, u64>,
    /// Per-stream counters, by stream name.
    pub streams: BTreeMap<String, StreamStats>,
}

/// Sub-records one Firehose record may hold for `RecordDeAggregation`.
pub const MAX_SUB_RECORDS: usize = 500;

/// Counters of one delivery stream.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StreamStats {
    /// `PutRecord`/`PutRecordBatch` requests addressed to the stream.
    pub requests: u64,
    /// Records received in requests that were processed record by record.
    pub received_records: u64,
    /// Records accepted (stored, given a `RecordId`).
    pub accepted_records: u64,
    /// Decoded data bytes of the accepted records.
    pub accepted_bytes: u64,
    /// What Firehose would bill for the accepted records: each rounded up to 5 KB.
    #[serde(default)]
    pub billed_bytes: u64,
    /// Accepted records that dynamic partitioning's `RecordDeAggregation` could not
    /// split (more than [`MAX_SUB_RECORDS`] sub-records): Firehose sends those to the
    /// error output prefix, not to their partitions.
    #[serde(default)]
    pub deaggregation_failed_records: u64,
    /// Records answered with an `ErrorCode` (injected failures and
    /// per-record throttling), or single `PutRecord`s failed that way.
    pub failed_records: u64,
    /// `failed_records` by error code.
    pub failed_records_by_code: BTreeMap<String, u64>,
    /// Requests rejected whole because of a quota.
    pub throttled_requests: u64,
    /// Records refused because of a quota (per record, or in a request
    /// throttled whole).
    pub throttled_records: u64,
    /// Requests refused with a 4xx: over the API limits or stream not ACTIVE.
    pub rejected_requests: u64,
    /// Requests failed through fault injection (outage, injected error,
    /// dropped connection).
    pub faulted_requests: u64,
    /// Objects written to the output folder.
    pub objects_written: u64,
    /// Bytes written to the output folder.
    pub object_bytes_written: u64,
    /// Accepted records and bytes per one-second bucket (oldest first, at
    /// most [`SERIES_CAPACITY`] points, seconds without traffic left out).
    pub series: Vec<SeriesPoint>,
}

/// Accepted traffic of one stream in one second.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeriesPoint {
    /// Unix time of the second (whole seconds).
    pub t: u64,
    /// Records accepted in that second.
    pub records: u64,
    /// Bytes accepted in that second.
    pub bytes: u64,
}

impl StreamStats {
    /// Counts one failed record with `code`.
    pub(crate) fn count_failure(&mut self, code: &str) {
        self.failed_records += 1;
        *self
            .failed_records_by_code
            .entry(code.to_string())
            .or_default() += 1;
    }

    /// Counts one accepted record of `bytes` bytes in second `t`.
    pub(crate) fn count_accepted(&mut self, t: u64, bytes: usize) {
        self.accepted_records += 1;
        self.accepted_bytes += bytes as u64;
        self.billed_bytes += (bytes as u64).div_ceil(5 * 1024).max(1) * 5 * 1024;
        match self.series.last_mut() {
            Some(p) if p.t == t => {
                p.records += 1;
                p.bytes += bytes as u64;
            }
            _ => {
                if self.series.len() >= SERIES_CAPACITY {
                    self.series.remove(0);
                }
                self.series.push(SeriesPoint {
                    t,
                    records: 1,
                    bytes: bytes as u64,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_buckets_by_second_and_caps() {
        let mut s = StreamStats::default();
        s.count_accepted(10, 5);
        s.count_accepted(10, 7);
        s.count_accepted(12, 1);
        assert_eq!(
            s.series,
            vec![
                SeriesPoint {
                    t: 10,
                    records: 2,
                    bytes: 12
                },
                SeriesPoint {
                    t: 12,
                    records: 1,
                    bytes: 1
                }
            ]
        );
        assert_eq!((s.accepted_records, s.accepted_bytes), (3, 13));
        for t in 100..(100 + SERIES_CAPACITY as u64 + 5) {
            s.count_accepted(t, 1);
        }
        assert_eq!(s.series.len(), SERIES_CAPACITY);
        assert_eq!(s.series[0].t, 105);
    }

    #[test]
    fn failures_by_code() {
        let mut s = StreamStats::default();
        s.count_failure("InternalFailure");
        s.count_failure("InternalFailure");
        s.count_failure("ServiceUnavailableException");
        assert_eq!(s.failed_records, 3);
        assert_eq!(s.failed_records_by_code["InternalFailure"], 2);
    }
}
