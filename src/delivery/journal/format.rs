//! The journal file's bytes: a header, then entries, each carrying its own length and
//! checksum, so a torn or corrupt tail is found and cut off, never read as a claim.
//!
//! ```text
//! header   MAGIC (8 bytes) | fingerprint (u64 LE)
//! entry    body length (u32 LE) | body | xxh3-64 of the body (u64 LE)
//! body     kind (u8) | tag hash (u64) | data hash (u64) | chunk length (u64) | records (u32)
//!          kind 1 (accepted): ranges (u32), then (first record, count) as u32 pairs
//!          kind 2 (done): nothing more
//! ```

use crate::delivery::dedupe::ChunkKey;

pub const MAGIC: &[u8; 8] = b"FHFOJRN1";
pub const HEADER_LEN: usize = 16;
const KIND_ACCEPTED: u8 = 1;
const KIND_DONE: u8 = 2;
const FIXED_BODY: usize = 1 + 8 + 8 + 8 + 4;
/// No entry is larger: a chunk has far fewer than this many ranges of records.
const MAX_BODY: usize = 1 << 24;

/// One fact about one chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// Firehose accepted these records (ranges of record indices) of a chunk of `records`.
    Accepted {
        key: ChunkKey,
        records: u32,
        ranges: Vec<(u32, u32)>,
    },
    /// Every record of the chunk was accepted.
    Done { key: ChunkKey, records: u32 },
}

pub fn header(fingerprint: u64) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..8].copy_from_slice(MAGIC);
    h[8..].copy_from_slice(&fingerprint.to_le_bytes());
    h
}

/// What a file's first bytes say.
#[derive(Debug, PartialEq, Eq)]
pub enum Header {
    /// Nothing written yet.
    Empty,
    /// Ours, written with the same settings.
    Matches,
    /// Ours, written with other encoding settings or another plugin version: its record
    /// numbers may mean other records.
    OtherSettings,
    /// Not a journal (or its header is damaged).
    Foreign,
}

pub fn read_header(bytes: &[u8], fingerprint: u64) -> Header {
    if bytes.is_empty() {
        return Header::Empty;
    }
    if bytes.len() < HEADER_LEN || &bytes[..8] != MAGIC {
        return Header::Foreign;
    }
    if bytes[8..HEADER_LEN] == fingerprint.to_le_bytes() {
        Header::Matches
    } else {
        Header::OtherSettings
    }
}

/// Appends one entry, framed, to `out`.
pub fn encode(entry: &Entry, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    let (kind, key, records) = match entry {
        Entry::Accepted { key, records, .. } => (KIND_ACCEPTED, key, records),
        Entry::Done { key, records } => (KIND_DONE, key, records),
    };
    out.push(kind);
    let (tag, data, len) = key.parts();
    out.extend_from_slice(&tag.to_le_bytes());
    out.extend_from_slice(&data.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&records.to_le_bytes());
    if let Entry::Accepted { ranges, .. } = entry {
        out.extend_from_slice(&(ranges.len() as u32).to_le_bytes());
        for (first, count) in ranges {
            out.extend_from_slice(&first.to_le_bytes());
            out.extend_from_slice(&count.to_le_bytes());
        }
    }
    let body_len = (out.len() - start - 4) as u32;
    out[start..start + 4].copy_from_slice(&body_len.to_le_bytes());
    let sum = xxhash_rust::xxh3::xxh3_64(&out[start + 4..]);
    out.extend_from_slice(&sum.to_le_bytes());
}

/// How the entries after the header end.
#[derive(Debug, PartialEq, Eq)]
pub enum Tail {
    /// Every byte is part of a whole, checked entry.
    Clean,
    /// The last entry is incomplete or fails its check: a write cut short by a crash.
    Torn,
    /// An entry fails its check and more bytes follow: damage, not a crash.
    Corrupt,
}

/// The entries of `bytes` (what follows the header), up to the first that is not whole
/// and checked; `good` is the length of that valid prefix.
pub struct Scan {
    pub entries: Vec<Entry>,
    pub good: usize,
    pub tail: Tail,
}

pub fn scan(bytes: &[u8]) -> Scan {
    let mut entries = Vec::new();
    let mut at = 0;
    let tail = loop {
        let rest = &bytes[at..];
        if rest.is_empty() {
            break Tail::Clean;
        }
        let Some(len) = rest.get(..4).map(|b| u32_at(b, 0) as usize) else {
            break Tail::Torn;
        };
        if !(FIXED_BODY..=MAX_BODY).contains(&len) {
            break Tail::Corrupt;
        }
        let end = 4 + len + 8;
        let Some(whole) = rest.get(..end) else {
            break Tail::Torn;
        };
        let body = &whole[4..4 + len];
        let sum = u64_at(whole, 4 + len);
        let entry = (xxhash_rust::xxh3::xxh3_64(body) == sum)
            .then(|| parse(body))
            .flatten();
        match entry {
            Some(e) => {
                entries.push(e);
                at += end;
            }
            None if end == rest.len() => break Tail::Torn,
            None => break Tail::Corrupt,
        }
    };
    Scan {
        entries,
        good: at,
        tail,
    }
}

fn parse(body: &[u8]) -> Option<Entry> {
    let key = ChunkKey::from_parts(u64_at(body, 1), u64_at(body, 9), u64_at(body, 17));
    let records = u32_at(body, 25);
    match body[0] {
        KIND_DONE if body.len() == FIXED_BODY => Some(Entry::Done { key, records }),
        KIND_ACCEPTED if body.len() >= FIXED_BODY + 4 => {
            let n = u32_at(body, FIXED_BODY) as usize;
            let pairs = &body[FIXED_BODY + 4..];
            if pairs.len() != n.checked_mul(8)? {
                return None;
            }
            let ranges: Vec<(u32, u32)> = pairs
                .chunks_exact(8)
                .map(|p| (u32_at(p, 0), u32_at(p, 4)))
                .collect();
            // A range past the chunk's records is damage, whatever its checksum says.
            let inside = ranges
                .iter()
                .all(|&(f, c)| u64::from(f) + u64::from(c) <= u64::from(records));
            inside.then_some(Entry::Accepted {
                key,
                records,
                ranges,
            })
        }
        _ => None,
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// Record indices (any order) as (first, count) ranges.
pub fn ranges(idx: &[u32]) -> Vec<(u32, u32)> {
    let mut sorted = idx.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut out: Vec<(u32, u32)> = Vec::new();
    for i in sorted {
        match out.last_mut() {
            Some((first, count)) if *first + *count == i => *count += 1,
            _ => out.push((i, 1)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<Entry> {
        let k = ChunkKey::of("app.log", b"chunk bytes");
        vec![
            Entry::Accepted {
                key: k,
                records: 10,
                ranges: vec![(0, 3), (7, 3)],
            },
            Entry::Done {
                key: k,
                records: 10,
            },
        ]
    }

    fn bytes_of(entries: &[Entry]) -> Vec<u8> {
        let mut out = Vec::new();
        for e in entries {
            encode(e, &mut out);
        }
        out
    }

    #[test]
    fn entries_read_back_as_written() {
        let bytes = bytes_of(&sample());
        let s = scan(&bytes);
        assert_eq!(s.entries, sample());
        assert_eq!((s.good, s.tail), (bytes.len(), Tail::Clean));
    }

    #[test]
    fn a_write_cut_short_is_torn_at_every_length() {
        let bytes = bytes_of(&sample());
        let first_len = bytes_of(&sample()[..1]).len();
        for cut in first_len + 1..bytes.len() {
            let s = scan(&bytes[..cut]);
            assert_eq!(s.tail, Tail::Torn, "cut at {cut}");
            assert_eq!((s.entries.len(), s.good), (1, first_len));
        }
    }

    #[test]
    fn a_flipped_byte_is_never_read_as_an_entry() {
        let bytes = bytes_of(&sample());
        let first_len = bytes_of(&sample()[..1]).len();
        for at in 0..first_len {
            let mut b = bytes.clone();
            b[at] ^= 0x40;
            let s = scan(&b);
            assert!(s.entries.is_empty(), "byte {at}");
            assert_ne!(s.tail, Tail::Clean, "byte {at}");
        }
        // Damage in the first entry with a whole entry after it is corruption, not a tear.
        let mut b = bytes.clone();
        b[10] ^= 1;
        assert_eq!(scan(&b).tail, Tail::Corrupt);
    }

    #[test]
    fn ranges_outside_the_chunk_are_refused() {
        let bad = Entry::Accepted {
            key: ChunkKey::of("t", b"x"),
            records: 4,
            ranges: vec![(2, 3)],
        };
        let s = scan(&bytes_of(&[bad]));
        assert!(s.entries.is_empty());
        assert_eq!(s.tail, Tail::Torn);
    }

    #[test]
    fn headers() {
        let h = header(7);
        assert_eq!(read_header(&h, 7), Header::Matches);
        assert_eq!(read_header(&h, 8), Header::OtherSettings);
        assert_eq!(read_header(b"", 7), Header::Empty);
        assert_eq!(read_header(b"[SERVICE]\n    Flush 1\n", 7), Header::Foreign);
        assert_eq!(read_header(&h[..10], 7), Header::Foreign);
    }

    #[test]
    fn indices_become_ranges() {
        assert_eq!(ranges(&[5, 1, 2, 3, 9, 6]), vec![(1, 3), (5, 2), (9, 1)]);
        assert!(ranges(&[]).is_empty());
    }
}
