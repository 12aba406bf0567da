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
    let mut out = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (i, &r) in indices.iter().enumerate() {
        let n = records.record_len(r as usize);
        if i > start && (i - start == MAX_BATCH_RECORDS || bytes + n > MAX_BATCH_BYTES) {
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
/// nearly equal record counts, each within the call limits, so that a small flush still
/// spreads over every stream.
pub fn split_even<'a>(indices: &'a [u32], records: &Records, parts: usize) -> Vec<&'a [u32]> {
    let by_limits = split(indices, records);
    let parts = parts.min(indices.len()).max(by_limits.len());
    if parts <= 1 {
        return by_limits;
    }
    let n = indices.len();
    let mut out = Vec::with_capacity(parts);
    for k in 0..parts {
        let part = &indices[k * n / parts..(k + 1) * n / parts];
        // Equal counts are not equal bytes: a part may still need splitting.
        out.extend(split(part, records));
    }
    out
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
    fn split_even_spreads_small_flushes() {
        let r = records(&vec![10; 900]);
        let idx: Vec<u32> = (0..900).collect();
        let b = split_even(&idx, &r, 2);
        assert_eq!(
            b.iter().map(|s| s.len()).collect::<Vec<_>>(),
            vec![450, 450]
        );
        let b = split_even(&idx, &r, 3);
        assert_eq!(
            b.iter().map(|s| s.len()).collect::<Vec<_>>(),
            vec![300, 300, 300]
        );
        // more parts than records: one record each
        assert_eq!(split_even(&idx[..2], &r, 5).len(), 2);
        // the limits still decide how many batches at least, and then they are even
        assert_eq!(
            split_even(&idx, &r, 1)
                .iter()
                .map(|s| s.len())
                .collect::<Vec<_>>(),
            vec![450, 450]
        );
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
}
