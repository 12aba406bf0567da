//! The value types of the settings, shared by the layers that act on them: how records
//! are spread (`Balance`, `Quota`), packed (`Compression`) and written (`EncodeOptions`),
//! and Firehose's limits. Their behaviour lives with those layers.

use super::time_format::TimeFormat;
use limits::MAX_RECORD_BYTES;

/// Amazon Kinesis Data Firehose's API limits.
pub mod limits {
    /// Firehose: at most 500 records per PutRecordBatch call.
    pub const MAX_BATCH_RECORDS: usize = 500;
    /// Firehose: at most 4 MiB of record data per call.
    pub const MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;
    /// Firehose: at most 1,000 KiB per record (before base64).
    pub const MAX_RECORD_BYTES: usize = 1_000 * 1024;
}

/// How records are spread over streams (`balance`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Balance {
    /// Capacity-aware: the stream that can take the batch soonest, within its quota.
    Adaptive,
    /// Batches in turn, no capacity model (for comparison).
    RoundRobin,
    /// A random stream per record, the classic workaround (for comparison).
    Random,
    /// Records with the same `partition_key` value stay on one stream (rendezvous hashing).
    Key,
}

impl Balance {
    pub fn parse(v: &str) -> Option<Balance> {
        Some(match v.to_ascii_lowercase().as_str() {
            "adaptive" => Balance::Adaptive,
            "round_robin" | "roundrobin" => Balance::RoundRobin,
            "random" => Balance::Random,
            "key" => Balance::Key,
            _ => return None,
        })
    }
}

/// A stream's quota per second.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quota {
    pub records: f64,
    pub bytes: f64,
    pub requests: f64,
}

impl Default for Quota {
    /// The big regions' per-stream quota.
    fn default() -> Self {
        Quota {
            records: 500_000.0,
            bytes: 5.0 * 1024.0 * 1024.0,
            requests: 2_000.0,
        }
    }
}

impl Quota {
    /// How far the learned rate of a quota key left unset may grow above its default:
    /// 20 × the default, i.e. 100 MiB/s, 10,000,000 records/s, 40,000 requests/s. AWS
    /// raises a stream's three quotas together, in proportion, and 100 MB/s is the largest
    /// throughput Firehose's own API lets one declare for a stream (`ThroughputHintInMBs`);
    /// the bound keeps a mistaken probe from running away, not a real quota out of reach.
    pub const PROBE_CEILING: f64 = 20.0;

    /// The default quota times `PROBE_CEILING`.
    pub fn probe_ceiling() -> Quota {
        let d = Quota::default();
        Quota {
            records: d.records * Self::PROBE_CEILING,
            bytes: d.bytes * Self::PROBE_CEILING,
            requests: d.requests * Self::PROBE_CEILING,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip { level: u32 },
    Zstd { level: i32 },
}

impl Compression {
    /// From `compression` and `compression_level` (None: the codec's default).
    pub fn parse(name: &str, level: Option<i64>) -> Result<Compression, String> {
        match name.to_ascii_lowercase().as_str() {
            "none" | "off" | "" => Ok(Compression::None),
            "gzip" => {
                let l = level.unwrap_or(6);
                if !(1..=9).contains(&l) {
                    return Err("gzip levels are 1 to 9".into());
                }
                Ok(Compression::Gzip { level: l as u32 })
            }
            "zstd" => {
                let l = level.unwrap_or(3);
                if !(1..=22).contains(&l) {
                    return Err("zstd levels are 1 to 22".into());
                }
                Ok(Compression::Zstd { level: l as i32 })
            }
            _ => Err("none, gzip or zstd".into()),
        }
    }

    /// The largest record whose compressed form always fits in Firehose's record limit:
    /// incompressible data grows a little (zstd at most 1/256 plus a header, gzip a few
    /// bytes per block), so a record that fits raw could be refused compressed.
    pub fn max_input(self) -> usize {
        let max = MAX_RECORD_BYTES;
        match self {
            Compression::None => max,
            _ => max - max / 128 - 1024,
        }
    }
}

/// What shapes a record; built by `config`.
#[derive(Debug, Clone)]
pub struct EncodeOptions {
    pub time_key: Option<String>,
    pub time_format: TimeFormat,
    pub log_key: Option<String>,
    pub data_keys: Option<Vec<String>>,
    pub replace_dots: Option<String>,
    /// `oversize_policy truncate`: a record over Firehose's limit is cut to fit (its longest
    /// strings, with a marker) instead of dropped.
    pub truncate_oversize: bool,
}

impl Default for EncodeOptions {
    fn default() -> Self {
        EncodeOptions {
            time_key: None,
            time_format: TimeFormat::parse(DEFAULT_TIME_FORMAT).unwrap_or_else(|_| unreachable!()),
            log_key: None,
            data_keys: None,
            replace_dots: None,
            truncate_oversize: false,
        }
    }
}

pub const DEFAULT_TIME_FORMAT: &str = "%Y-%m-%dT%H:%M:%S";
