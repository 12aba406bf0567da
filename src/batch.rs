//! The encoded records of one chunk, and packing them into PutRecordBatch-sized batches.

use std::ops::Range;

/// Firehose: at most 500 records per PutRecordBatch call.
pub const MAX_BATCH_RECORDS: usize = 500;
/// Firehose: at most 4 MiB of record data per call.
pub const MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;
/// Firehose: at most 1,000 KiB per record (before base64).
pub const MAX_RECORD_BYTES: usize = 1_000 * 1024;

/// All records of one chunk, back to back in one buffer.
#[derive(Debug, Default)]
pub struct Records {
    data: Vec<u8>,
    ends: Vec<usize>,
}

impl Records {
    pub fn with_capacity(bytes: usize) -> Self {
        Records {
            data: Vec::with_capacity(bytes),
            ends: Vec::new(),
        }
    }

    /// Moves `other`'s records after these (async mode packs several chunks into one job).
    pub fn append(&mut self, other: Records) {
        if self.ends.is_empty() {
            *self = other;
            return;
        }
        let offset = self.data.len();
        self.data.extend_from_slice(&other.data);
        self.ends.extend(other.ends.iter().map(|e| e + offset));
    }

    /// The buffer to encode the next record into (append only).
    pub fn buffer(&mut self) -> &mut Vec<u8> {
        &mut self.data
    }

    /// Start of the record being encoded.
    pub fn open_start(&self) -> usize {
        self.ends.last().copied().unwrap_or(0)
    }

    /// Keeps what was appended since the last commit as one record.
    pub fn commit(&mut self) {
        self.ends.push(self.data.len());
    }

    /// Throws away what was appended since the last commit.
    pub fn discard(&mut self) {
        let start = self.open_start();
        self.data.truncate(start);
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    pub fn total_bytes(&self) -> usize {
        self.open_start()
    }

    pub fn range(&self, i: usize) -> Range<usize> {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        start..self.ends[i]
    }

    pub fn get(&self, i: usize) -> &[u8] {
        &self.data[self.range(i)]
    }

    pub fn record_len(&self, i: usize) -> usize {
        self.range(i).len()
    }
}

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

/// How log records become Firehose records.
#[derive(Debug, Clone, Copy)]
pub struct Framing {
    /// Pack log records into Firehose records of up to this many bytes (None: one each).
    pub aggregate_max: Option<usize>,
    pub compression: crate::compress::Compression,
}

/// One Firehose record and the positions (in the batch) of the log records it carries.
#[derive(Debug)]
pub struct Frame {
    pub data: Vec<u8>,
    pub members: Range<usize>,
    /// Bytes before compression.
    pub raw_len: usize,
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
        // Measure first, then copy into a buffer of the exact size (no doubling).
        let mut len = records.record_len(batch[k] as usize);
        k += 1;
        while max > 0 && k < batch.len() && len + records.record_len(batch[k] as usize) <= max {
            len += records.record_len(batch[k] as usize);
            k += 1;
        }
        let data = loop {
            let mut data = Vec::with_capacity(len);
            for &i in &batch[start..k] {
                data.extend_from_slice(records.get(i as usize));
            }
            let raw_len = data.len();
            let data = framing.compression.apply(data)?;
            // Compression made an aggregate larger than Firehose takes: fewer members.
            if data.len() <= MAX_RECORD_BYTES || k - start == 1 {
                break (data, raw_len);
            }
            k = start + (k - start) / 2;
            len = batch[start..k]
                .iter()
                .map(|&i| records.record_len(i as usize))
                .sum();
        };
        if total + data.0.len() > MAX_BATCH_BYTES && !frames.is_empty() {
            break;
        }
        total += data.0.len();
        frames.push(Frame {
            data: data.0,
            members: start..k,
            raw_len: data.1,
        });
    }
    Ok(frames)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(sizes: &[usize]) -> Records {
        let mut r = Records::default();
        for &n in sizes {
            r.buffer().extend(std::iter::repeat_n(b'x', n));
            r.commit();
        }
        r
    }

    #[test]
    fn respects_count_and_byte_limits() {
        let r = records(&vec![10; 1234]);
        let idx: Vec<u32> = (0..1234).collect();
        let b = split(&idx, &r);
        assert_eq!(
            b.iter().map(|s| s.len()).collect::<Vec<_>>(),
            vec![500, 500, 234]
        );

        let big = MAX_RECORD_BYTES;
        let r = records(&[big, big, big, big, big, 7]);
        let idx: Vec<u32> = (0..6).collect();
        let b = split(&idx, &r);
        for s in &b {
            let total: usize = s.iter().map(|&i| r.record_len(i as usize)).sum();
            assert!(total <= MAX_BATCH_BYTES);
        }
        assert_eq!(b.iter().map(|s| s.len()).sum::<usize>(), 6);
        assert_eq!(b.len(), 2);
    }

    #[test]
    fn frames_aggregate_up_to_the_limit_and_bill_by_5kb() {
        use crate::compress::Compression;
        let r = records(&[3000, 3000, 3000, 100, 9000]);
        let idx: Vec<u32> = (0..5).collect();
        let plain = Framing {
            aggregate_max: None,
            compression: Compression::None,
        };
        let f = frame(&r, &idx, plain).unwrap();
        assert_eq!(f.len(), 5);
        let agg = Framing {
            aggregate_max: Some(6100),
            compression: Compression::None,
        };
        let f = frame(&r, &idx, agg).unwrap();
        let members: Vec<_> = f.iter().map(|f| f.members.clone()).collect();
        // 6,100 rounds down to one 5 KB unit: 3,000 + 3,000 would take two units anyway.
        assert_eq!(members, vec![0..1, 1..2, 2..4, 4..5]);
        assert_eq!(f[2].data.len(), 3100);
        assert_eq!(billed_bytes(100), 5120);
        assert_eq!(billed_bytes(5120), 5120);
        assert_eq!(billed_bytes(5121), 10240);
        let gz = Framing {
            aggregate_max: Some(1 << 20),
            compression: Compression::Gzip { level: 6 },
        };
        let f = frame(&r, &idx, gz).unwrap();
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].raw_len, 18100);
        assert!(f[0].data.len() < 200, "x-runs compress well");
    }

    #[test]
    fn split_even_spreads_small_flushes() {
        let r = records(&vec![10; 900]);
        let idx: Vec<u32> = (0..900).collect();
        let b = split_even(&idx, &r, 2, MAX_BATCH_RECORDS, false);
        assert_eq!(
            b.iter().map(|s| s.len()).collect::<Vec<_>>(),
            vec![450, 450]
        );
        let b = split_even(&idx, &r, 3, MAX_BATCH_RECORDS, false);
        assert_eq!(
            b.iter().map(|s| s.len()).collect::<Vec<_>>(),
            vec![300, 300, 300]
        );
        // more parts than records: one record each
        assert_eq!(
            split_even(&idx[..2], &r, 5, MAX_BATCH_RECORDS, false).len(),
            2
        );
        // the limits still decide how many batches at least, and then they are even
        assert_eq!(
            split_even(&idx, &r, 1, MAX_BATCH_RECORDS, false)
                .iter()
                .map(|s| s.len())
                .collect::<Vec<_>>(),
            vec![450, 450]
        );
    }

    fn billed(r: &Records, parts: &[&[u32]], framing: Framing) -> u64 {
        parts
            .iter()
            .flat_map(|p| frame(r, p, framing).unwrap())
            .map(|f| billed_bytes(f.data.len()))
            .sum()
    }

    #[test]
    fn aggregated_split_cuts_on_billing_units() {
        use crate::compress::Compression;
        let agg = Framing {
            aggregate_max: Some(MAX_RECORD_BYTES),
            compression: Compression::None,
        };
        // 2,000 records of 103 bytes (206,000 bytes: 41 units at least) over 4 streams.
        let r = records(&vec![103; 2000]);
        let idx: Vec<u32> = (0..2000).collect();
        let even = split_even(&idx, &r, 4, usize::MAX, true);
        assert_eq!(even.len(), 4);
        assert_eq!(even.iter().map(|p| p.len()).sum::<usize>(), 2000);
        for p in &even[..3] {
            let bytes = p.len() * 103;
            assert!(bytes % 5120 > 5120 - 103, "{bytes} ends just under a unit");
        }
        assert_eq!(billed(&r, &even, agg), 41 * 5120);
        // Equal counts (the unaligned split) round each of the four parts up.
        let counts = split_even(&idx, &r, 4, MAX_BATCH_RECORDS, false);
        assert_eq!(billed(&r, &counts, agg), 44 * 5120);
        // Never a part smaller than a unit: 3 KB of records stay whole.
        let small = records(&vec![100; 30]);
        let idx: Vec<u32> = (0..30).collect();
        assert_eq!(split_even(&idx, &small, 4, usize::MAX, true).len(), 1);
        // 12 KB over 4 streams: two parts.
        let mid = records(&vec![100; 120]);
        let idx: Vec<u32> = (0..120).collect();
        assert_eq!(split_even(&idx, &mid, 4, usize::MAX, true).len(), 2);
    }

    #[test]
    fn full_aggregates_end_on_a_unit() {
        use crate::compress::Compression;
        let r = records(&vec![100; 300]);
        let idx: Vec<u32> = (0..300).collect();
        let f = frame(
            &r,
            &idx,
            Framing {
                aggregate_max: Some(12_000),
                compression: Compression::None,
            },
        )
        .unwrap();
        // 12,000 rounds down to 10,240 (2 units): 102 records of 100 bytes each aggregate.
        assert_eq!(f[0].data.len(), 10_200);
        assert_eq!(f.iter().map(|f| f.members.len()).sum::<usize>(), 300);
    }

    #[test]
    fn append_keeps_every_record() {
        let mut a = Records::default();
        a.append(records(&[3, 4]));
        a.append(Records::default());
        a.append(records(&[5]));
        assert_eq!(a.len(), 3);
        assert_eq!(a.get(2), b"xxxxx");
        assert_eq!(a.total_bytes(), 12);
    }

    #[test]
    fn discard_drops_the_open_record() {
        let mut r = Records::default();
        r.buffer().extend_from_slice(b"a\n");
        r.commit();
        r.buffer().extend_from_slice(b"partial");
        r.discard();
        r.buffer().extend_from_slice(b"b\n");
        r.commit();
        assert_eq!(r.get(0), b"a\n");
        assert_eq!(r.get(1), b"b\n");
        assert_eq!(r.total_bytes(), 4);
    }

    #[test]
    fn one_call_never_carries_more_than_500_firehose_records_or_4_mib() {
        use crate::compress::Compression;
        // 1 KiB aggregates of 100-byte records: 10 per frame, 5,000 records = 500 frames.
        let r = records(&vec![100; 6000]);
        let idx: Vec<u32> = (0..6000).collect();
        let small = Framing {
            aggregate_max: Some(1024),
            compression: Compression::None,
        };
        let f = frame(&r, &idx, small).unwrap();
        assert_eq!(f.len(), MAX_BATCH_RECORDS);
        let end = f.last().unwrap().members.end;
        assert!(end < idx.len());
        // The rest frames in further calls, every record exactly once.
        let rest = frame(&r, &idx[end..], small).unwrap();
        assert_eq!(rest.last().unwrap().members.end, idx.len() - end);
        // Bytes: 8 records of 900 KiB are two calls of at most 4 MiB.
        let r = records(&[900 * 1024; 8]);
        let idx: Vec<u32> = (0..8).collect();
        let plain = Framing {
            aggregate_max: None,
            compression: Compression::None,
        };
        let f = frame(&r, &idx, plain).unwrap();
        let total: usize = f.iter().map(|x| x.data.len()).sum();
        assert!(total <= MAX_BATCH_BYTES, "{total}");
        assert_eq!(f.len(), 4);
    }

    #[test]
    fn an_aggregate_that_compression_makes_too_large_is_cut() {
        use crate::compress::Compression;
        // Incompressible records filling an aggregate to the limit: gzip adds a little.
        let mut r = Records::default();
        let mut rng = fastrand::Rng::with_seed(5);
        for _ in 0..10 {
            r.buffer().extend((0..100 * 1024).map(|_| rng.u8(..)));
            r.commit();
        }
        let idx: Vec<u32> = (0..10).collect();
        let gz = Framing {
            aggregate_max: Some(MAX_RECORD_BYTES),
            compression: Compression::Gzip { level: 1 },
        };
        let f = frame(&r, &idx, gz).unwrap();
        assert!(f.len() >= 2);
        for x in &f {
            assert!(x.data.len() <= MAX_RECORD_BYTES, "{}", x.data.len());
        }
        assert_eq!(f.last().unwrap().members.end, 10);
        // A single record at the compressed limit fits once compressed.
        let max = Compression::Gzip { level: 1 }.max_input();
        let mut one = Records::default();
        one.buffer().extend((0..max).map(|_| rng.u8(..)));
        one.commit();
        let f = frame(&one, &[0], gz).unwrap();
        assert!(f[0].data.len() <= MAX_RECORD_BYTES);
    }
}
