//! Records into batches: each within one call's limits, spread evenly over streams, cut on
//! 5 KB billing units when aggregating.

use super::{Records, BILLING_UNIT, MAX_BATCH_BYTES, MAX_BATCH_RECORDS};

/// Splits `indices` (records to send) into consecutive slices that each fit one call.
pub fn split<'a>(indices: &'a [u32], records: &Records) -> Vec<&'a [u32]> {
    split_limited(indices, records, MAX_BATCH_RECORDS)
}

/// As `split`, with at most `max_records` log records a call (aggregation packs many log
/// records into few Firehose records, so only the byte limit binds then).
pub fn split_limited<'a>(
    indices: &'a [u32],
    records: &Records,
    max_records: usize,
) -> Vec<&'a [u32]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (i, &r) in indices.iter().enumerate() {
        let n = records.record_len(r as usize);
        if i > start && (i - start == max_records || bytes + n > MAX_BATCH_BYTES) {
            out.push(&indices[start..i]);
            start = i;
            bytes = 0;
        }
        bytes += n;
    }
    if start < indices.len() {
        out.push(&indices[start..]);
    }
    out
}

/// Splits `indices` into at least `parts` (when there are that many records) batches of
/// nearly equal size, each within the call limits, so that a small flush still spreads
/// over every stream. Without `aggregated`: equal record counts. With it (every stream packs
/// records into aggregates): equal bytes, each part but the last cut just under a multiple
/// of the 5 KB billing unit and none smaller than one unit, so spreading a chunk over N
/// streams adds no rounding beyond the last part's.
pub fn split_even<'a>(
    indices: &'a [u32],
    records: &Records,
    parts: usize,
    max_records: usize,
    aggregated: bool,
) -> Vec<&'a [u32]> {
    let by_limits = split_limited(indices, records, max_records);
    let mut parts = parts.min(indices.len());
    let total: usize = if aggregated {
        indices
            .iter()
            .map(|&i| records.record_len(i as usize))
            .sum()
    } else {
        0
    };
    if aggregated {
        // No part smaller than one billing unit.
        parts = parts.min(total / BILLING_UNIT as usize);
    }
    let parts = parts.max(by_limits.len());
    if parts <= 1 {
        return by_limits;
    }
    let cut = if aggregated {
        cut_on_units(indices, records, parts, total)
    } else {
        let n = indices.len();
        (0..parts)
            .map(|k| &indices[k * n / parts..(k + 1) * n / parts])
            .collect()
    };
    // A part may still hold more than one call may carry.
    cut.into_iter()
        .flat_map(|part| split_limited(part, records, max_records))
        .collect()
}

/// `parts` consecutive parts of about equal bytes, each but the last ending just under a
/// whole number of billing units (at least one).
fn cut_on_units<'a>(
    indices: &'a [u32],
    records: &Records,
    parts: usize,
    total: usize,
) -> Vec<&'a [u32]> {
    let unit = BILLING_UNIT as usize;
    let target = (total / parts / unit * unit).max(unit);
    let mut out = Vec::with_capacity(parts);
    let (mut start, mut bytes) = (0, 0);
    for (i, &r) in indices.iter().enumerate() {
        let len = records.record_len(r as usize);
        if i > start && bytes + len > target && out.len() + 1 < parts {
            out.push(&indices[start..i]);
            start = i;
            bytes = 0;
        }
        bytes += len;
    }
    out.push(&indices[start..]);
    out
}
