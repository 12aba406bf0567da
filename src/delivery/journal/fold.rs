//! The journal's entries folded into what is known per chunk: the state the plugin starts
//! from, and what a compacted journal keeps.

use super::format::{ranges, Entry};
use crate::delivery::dedupe::ChunkKey;
use std::collections::HashMap;

/// What is known of one chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Every record was accepted.
    Done { records: u32 },
    /// These records were accepted (one bit per record).
    Partial { records: u32, bits: Vec<u64> },
}

impl State {
    pub fn records(&self) -> u32 {
        match self {
            State::Done { records } | State::Partial { records, .. } => *records,
        }
    }

    /// A chunk of `records` with the records of `accepted` set.
    pub fn from_accepted(accepted: &[bool]) -> State {
        let mut bits = vec![0u64; accepted.len().div_ceil(64)];
        for (i, _) in accepted.iter().enumerate().filter(|(_, &a)| a) {
            bits[i / 64] |= 1 << (i % 64);
        }
        State::Partial {
            records: accepted.len() as u32,
            bits,
        }
    }

    /// One flag per record: accepted or not.
    pub fn accepted(&self) -> Vec<bool> {
        match self {
            State::Done { records } => vec![true; *records as usize],
            State::Partial { records, bits } => (0..*records as usize)
                .map(|i| bits[i / 64] & (1 << (i % 64)) != 0)
                .collect(),
        }
    }

    /// The entry that says as much.
    pub fn entry(&self, key: ChunkKey) -> Entry {
        match self {
            State::Done { records } => Entry::Done {
                key,
                records: *records,
            },
            State::Partial { records, .. } => {
                let idx: Vec<u32> = self
                    .accepted()
                    .iter()
                    .enumerate()
                    .filter(|(_, &a)| a)
                    .map(|(i, _)| i as u32)
                    .collect();
                Entry::Accepted {
                    key,
                    records: *records,
                    ranges: ranges(&idx),
                }
            }
        }
    }
}

/// Folds entries, in the order written, into the state of the `capacity` chunks written
/// last (oldest first). Records accepted of a chunk that was done start a new round: the
/// plugin writes that only for a new flush of identical bytes (never for a retry, which
/// finds the chunk done and sends nothing).
pub fn fold(entries: impl IntoIterator<Item = Entry>, capacity: usize) -> Vec<(ChunkKey, State)> {
    let mut map: HashMap<ChunkKey, (u64, State)> = HashMap::new();
    for (seq, e) in entries.into_iter().enumerate() {
        let seq = seq as u64;
        match e {
            Entry::Done { key, records } => {
                map.insert(key, (seq, State::Done { records }));
            }
            Entry::Accepted {
                key,
                records,
                ranges,
            } => {
                let slot = map.entry(key).or_insert((seq, State::Done { records: 0 }));
                slot.0 = seq;
                let fresh = match &slot.1 {
                    State::Partial { records: r, .. } => *r != records,
                    State::Done { .. } => true,
                };
                if fresh {
                    slot.1 = State::Partial {
                        records,
                        bits: vec![0; (records as usize).div_ceil(64)],
                    };
                }
                if let State::Partial { bits, .. } = &mut slot.1 {
                    for (first, count) in ranges {
                        for i in first as usize..(first + count) as usize {
                            bits[i / 64] |= 1 << (i % 64);
                        }
                    }
                }
            }
        }
    }
    let mut out: Vec<(u64, ChunkKey, State)> =
        map.into_iter().map(|(k, (seq, s))| (seq, k, s)).collect();
    out.sort_unstable_by_key(|(seq, _, _)| *seq);
    let skip = out.len().saturating_sub(capacity);
    out.into_iter().skip(skip).map(|(_, k, s)| (k, s)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acc(key: ChunkKey, records: u32, ranges: &[(u32, u32)]) -> Entry {
        Entry::Accepted {
            key,
            records,
            ranges: ranges.to_vec(),
        }
    }

    #[test]
    fn calls_add_up_and_done_wins() {
        let a = ChunkKey::of("t", b"a");
        let b = ChunkKey::of("t", b"b");
        let f = fold(
            [
                acc(a, 5, &[(0, 2)]),
                acc(b, 3, &[(1, 1)]),
                acc(a, 5, &[(4, 1)]),
                Entry::Done { key: b, records: 3 },
            ],
            10,
        );
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].0, a);
        assert_eq!(f[0].1.accepted(), vec![true, true, false, false, true]);
        assert_eq!(f[1], (b, State::Done { records: 3 }));
    }

    #[test]
    fn a_new_round_after_done_starts_empty() {
        let a = ChunkKey::of("t", b"a");
        let f = fold(
            [Entry::Done { key: a, records: 4 }, acc(a, 4, &[(1, 1)])],
            10,
        );
        assert_eq!(f[0].1.accepted(), vec![false, true, false, false]);
    }

    #[test]
    fn keeps_the_chunks_written_last() {
        let keys: Vec<ChunkKey> = (0..5u8).map(|i| ChunkKey::of("t", &[i])).collect();
        let mut entries: Vec<Entry> = keys.iter().map(|&k| acc(k, 1, &[(0, 1)])).collect();
        // The first chunk written again is among the newest.
        entries.push(Entry::Done {
            key: keys[0],
            records: 1,
        });
        let f = fold(entries, 3);
        let kept: Vec<ChunkKey> = f.iter().map(|(k, _)| *k).collect();
        assert_eq!(kept, vec![keys[3], keys[4], keys[0]]);
    }

    #[test]
    fn state_and_entry_agree() {
        let k = ChunkKey::of("t", b"x");
        let s = State::from_accepted(&[true, false, true, true]);
        assert_eq!(fold([s.entry(k)], 1), vec![(k, s)]);
    }
}
