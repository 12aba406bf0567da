//! A batch into Firehose records: aggregates, compressed, within the record limit, at most
//! one call's worth (500 Firehose records, 4 MiB).

use super::compress::Compression;
use super::{Records, MAX_BATCH_BYTES, MAX_BATCH_RECORDS, MAX_RECORD_BYTES};
use std::ops::Range;

/// How log records become Firehose records.
#[derive(Debug, Clone, Copy)]
pub struct Framing {
    /// Pack log records into Firehose records of up to this many bytes (None: one each).
    pub aggregate_max: Option<usize>,
    /// At most this many log records in one aggregate (a reader that splits aggregates
    /// again, such as dynamic partitioning's deaggregation, takes at most 500).
    pub max_members: Option<usize>,
    pub compression: crate::batch::compress::Compression,
}

/// One Firehose record and the positions (in the batch) of the log records it carries.
/// Uncompressed, its bytes are its members' where they lie in [`Records`] (the request body
/// is written from them directly, not from a copy).
#[derive(Debug)]
pub struct Frame {
    /// The compressed aggregate (with compression).
    pub compressed: Option<Vec<u8>>,
    pub members: Range<usize>,
    /// Bytes Firehose receives (after compression).
    pub len: usize,
    /// Bytes before compression.
    pub raw_len: usize,
}

impl Frame {
    /// The record's bytes in order: the compressed buffer, or each member's bytes.
    pub fn pieces<'a>(
        &'a self,
        records: &'a Records,
        batch: &'a [u32],
    ) -> impl Iterator<Item = &'a [u8]> + 'a {
        let members = match self.compressed {
            Some(_) => &[][..],
            None => &batch[self.members.clone()],
        };
        self.compressed
            .as_deref()
            .into_iter()
            .chain(members.iter().map(|&i| records.get(i as usize)))
    }
}

/// Firehose bills each record rounded up to 5 KB.
pub const BILLING_UNIT: u64 = 5 * 1024;

pub fn billed_bytes(record_len: usize) -> u64 {
    (record_len as u64).div_ceil(BILLING_UNIT).max(1) * BILLING_UNIT
}

/// Turns a batch of log records into Firehose records: aggregates of consecutive records
/// up to `aggregate_max` bytes (a log record never straddles two), each compressed and
/// within Firehose's record limit. Frames one call's worth at most (500 Firehose records,
/// 4 MiB): records after the last frame's members are left for another call.
pub fn frame(records: &Records, batch: &[u32], framing: Framing) -> std::io::Result<Vec<Frame>> {
    let mut frames = Vec::new();
    // Full aggregates end just under a whole number of billing units.
    let max = match framing.aggregate_max {
        Some(m) if m >= BILLING_UNIT as usize => m - m % BILLING_UNIT as usize,
        Some(m) => m,
        None => 0,
    };
    let mut total = 0;
    let mut k = 0;
    // One call: at most 500 Firehose records and 4 MiB; what does not fit is left for
    // another call (the caller sends `batch[frames.last().members.end..]` again).
    while k < batch.len() && frames.len() < MAX_BATCH_RECORDS {
        let start = k;
        // Measure first; with compression, copy into a buffer of the exact size (no doubling).
        let mut len = records.record_len(batch[k] as usize);
        k += 1;
        let members = framing.max_members.unwrap_or(usize::MAX);
        while max > 0
            && k < batch.len()
            && k - start < members
            && len + records.record_len(batch[k] as usize) <= max
        {
            len += records.record_len(batch[k] as usize);
            k += 1;
        }
        let (compressed, sent_len, raw_len) = if matches!(framing.compression, Compression::None) {
            (None, len, len)
        } else {
            loop {
                let mut data = Vec::with_capacity(len);
                for &i in &batch[start..k] {
                    data.extend_from_slice(records.get(i as usize));
                }
                let raw_len = data.len();
                let data = framing.compression.apply(data)?;
                // Compression made an aggregate larger than Firehose takes: fewer members.
                if data.len() <= MAX_RECORD_BYTES || k - start == 1 {
                    let n = data.len();
                    break (Some(data), n, raw_len);
                }
                k = start + (k - start) / 2;
                len = batch[start..k]
                    .iter()
                    .map(|&i| records.record_len(i as usize))
                    .sum();
            }
        };
        if total + sent_len > MAX_BATCH_BYTES && !frames.is_empty() {
            break;
        }
        total += sent_len;
        frames.push(Frame {
            compressed,
            members: start..k,
            len: sent_len,
            raw_len,
        });
    }
    Ok(frames)
}
