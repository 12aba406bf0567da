//! A chunk into records: decode, encode, and what had to be skipped (logged and counted).

use super::{Context, FlushCode};
use crate::batch::{Records, MAX_RECORD_BYTES};
use crate::codec::decode::{DecodeStats, Decoder, Item};
use crate::codec::encode::{self, EncodeError, EncodeOptions, Encoder};
use crate::schedule::Balance;
use crate::telemetry::log::Level;

/// A chunk decoded and encoded into records.
#[derive(Debug, Default)]
pub struct Prepared {
    pub records: Records,
    /// Hash of each record's `partition_key` value (only with `balance key`).
    pub keys: Vec<u64>,
    pub decode: DecodeStats,
    /// Records larger than Firehose's 1,000 KiB limit: dropped.
    pub oversize: usize,
    /// Records larger than the limit cut to fit (`oversize_policy truncate`).
    pub truncated: usize,
    /// Records without the configured `log_key`: dropped.
    pub missing_log_key: usize,
}

/// Decodes and encodes a whole chunk. Runs on the plugin's threads, never on Fluent Bit's.
pub fn prepare(opts: &EncodeOptions, chunk: &[u8]) -> Prepared {
    prepare_keyed(opts, None, MAX_RECORD_BYTES, chunk)
}

/// As `prepare`, with records up to `max_record` bytes, also hashing each record's
/// `partition_key` value.
pub fn prepare_keyed(
    opts: &EncodeOptions,
    partition_key: Option<&str>,
    max_record: usize,
    chunk: &[u8],
) -> Prepared {
    let mut p = Prepared {
        // JSON is usually a little larger than msgpack.
        records: Records::with_capacity(chunk.len() + chunk.len() / 4),
        ..Default::default()
    };
    let mut enc = Encoder::new(opts.clone(), max_record);
    let mut events = Decoder::new(chunk);
    while let Some(item) = events.next() {
        match item {
            Item::GroupMarker => p.decode.group_markers += 1,
            Item::Malformed(_) => p.decode.malformed += 1,
            Item::Record(ev) => {
                p.decode.records += 1;
                let encoded = enc.encode_or_truncate(&ev, p.records.buffer());
                // Each body is lexed once: the decoder goes on where the encoder stopped.
                if let Some(end) = enc.body_end() {
                    events.body_ends_at(end);
                }
                match encoded {
                    Ok(cut) => {
                        p.truncated += usize::from(cut);
                        p.records.commit();
                        if let Some(k) = partition_key {
                            p.keys.push(encode::key_hash(&ev, k));
                        }
                    }
                    Err(e) => {
                        p.records.discard();
                        match e {
                            EncodeError::TooLarge(_) => p.oversize += 1,
                            EncodeError::MissingLogKey => p.missing_log_key += 1,
                            // A broken body: the decoder reports it (and stops) next.
                            EncodeError::Malformed(_) => p.decode.records -= 1,
                        }
                    }
                }
            }
        }
    }
    p
}

/// Decodes and encodes a chunk on the plugin's threads, logs and counts what had to be
/// skipped. `Err`: nothing in it to send (the code to answer).
pub(super) fn encode_chunk(ctx: &Context, chunk: &[u8], tag: &str) -> Result<Prepared, FlushCode> {
    let log = &ctx.log;
    let cfg = &ctx.config;
    let partition_key = match cfg.balance {
        Balance::Key => cfg.partition_key.as_deref(),
        _ => None,
    };
    // Compressed, a record must still fit Firehose's limit.
    let max_record = cfg.compression.max_input();
    let p = prepare_keyed(&cfg.encode, partition_key, max_record, chunk);
    if p.decode.malformed > 0 {
        log.limited(
            "malformed",
            Level::Warn,
            format_args!(
                "tag {tag}: skipped {} malformed event(s) of the chunk",
                p.decode.malformed
            ),
        );
    }
    if p.oversize > 0 {
        log.limited(
            "oversize",
            Level::Error,
            format_args!(
                "tag {tag}: dropped {} record(s) larger than Firehose's limit of {} bytes",
                p.oversize, max_record
            ),
        );
    }
    if p.truncated > 0 {
        log.limited(
            "truncated",
            Level::Warn,
            format_args!(
                "tag {tag}: cut {} record(s) larger than Firehose's limit of {} bytes to fit (oversize_policy truncate)",
                p.truncated, max_record
            ),
        );
        ctx.counters.add_truncated(p.truncated as u64);
    }
    if p.missing_log_key > 0 {
        log.limited(
            "missing-log-key",
            Level::Warn,
            format_args!(
                "tag {tag}: dropped {} record(s) without the log_key field '{}'",
                p.missing_log_key,
                cfg.encode.log_key.as_deref().unwrap_or("")
            ),
        );
    }
    ctx.counters
        .add_dropped((p.oversize + p.missing_log_key) as u64);
    ctx.counters.add_malformed(p.decode.malformed as u64);

    if p.records.is_empty() {
        if p.decode.records == 0 && p.decode.malformed == 0 {
            return Err(FlushCode::Ok); // empty, or only group markers: nothing to ship
        }
        log.limited("undeliverable", Level::Error, format_args!(
            "tag {tag}: nothing in the chunk can be delivered ({} bytes, {} events, {} malformed, {} dropped): answering FLB_ERROR",
            chunk.len(), p.decode.records, p.decode.malformed, p.oversize + p.missing_log_key
        ));
        return Err(FlushCode::Error);
    }
    Ok(p)
}
