//! Remembers which records of a chunk Firehose already accepted when a flush answers
//! FLB_RETRY, so that Fluent Bit's retry of the same chunk sends only the rest.
//!
//! Keyed by the tag and a 64-bit hash (xxh3) and length of the chunk bytes. Bounded: at most
//! `capacity` chunks (oldest forgotten first), each kept as a bitset of one bit per record,
//! so the memory is at most `capacity × records per chunk / 8` bytes (1,024 chunks of 2,000
//! records: 256 KiB). A forgotten chunk is sent whole again: at-least-once still holds.
//!
//! With `journal_path`, what each call had accepted, and each chunk delivered whole, is
//! also written to the journal, and read back at start: a chunk Fluent Bit flushes again
//! after the process died is then a retry like any other.

use super::journal::format::ranges;
use super::journal::{self, Entry, Journal, State};
use crate::config::Config;
use crate::telemetry::log::Logger;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChunkKey {
    tag: u64,
    data: u64,
    len: u64,
}

impl ChunkKey {
    pub fn of(tag: &str, chunk: &[u8]) -> ChunkKey {
        ChunkKey {
            tag: tag_hash(tag),
            data: xxhash_rust::xxh3::xxh3_64(chunk),
            len: chunk.len() as u64,
        }
    }

    /// What `Delivered::may_hold` compares: the tag's hash and the chunk's length.
    fn size(&self) -> (u64, u64) {
        (self.tag, self.len)
    }

    /// Tag hash, data hash, length: as the journal stores them.
    pub fn parts(&self) -> (u64, u64, u64) {
        (self.tag, self.data, self.len)
    }

    pub fn from_parts(tag: u64, data: u64, len: u64) -> ChunkKey {
        ChunkKey { tag, data, len }
    }
}

fn tag_hash(tag: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(tag.as_bytes())
}

#[derive(Debug, Default)]
struct Inner {
    map: HashMap<ChunkKey, State>,
    order: VecDeque<ChunkKey>,
    /// How many remembered chunks have each (tag, length): a chunk whose pair is not here
    /// cannot be one of them, and need not be hashed to find out.
    sizes: HashMap<(u64, u64), usize>,
}

impl Inner {
    fn remove(&mut self, key: &ChunkKey) -> Option<State> {
        let state = self.map.remove(key)?;
        if let Some(n) = self.sizes.get_mut(&key.size()) {
            *n -= 1;
            if *n == 0 {
                self.sizes.remove(&key.size());
            }
        }
        Some(state)
    }
}

pub struct Delivered {
    capacity: usize,
    inner: Mutex<Inner>,
    /// On disk as well (`journal_path`): survives the process.
    journal: Option<Journal>,
}

impl Delivered {
    pub fn new(capacity: usize) -> Delivered {
        Delivered {
            capacity,
            inner: Mutex::new(Inner::default()),
            journal: None,
        }
    }

    /// Backed by a journal, starting from what it knew.
    pub fn with_journal(
        capacity: usize,
        journal: Journal,
        known: Vec<(ChunkKey, State)>,
    ) -> Delivered {
        let d = Delivered {
            journal: Some(journal),
            ..Delivered::new(capacity)
        };
        for (key, state) in known {
            d.insert(key, state);
        }
        d
    }

    /// The instance's retry memory: backed by its journal when `journal_path` is set and the
    /// journal can be opened (if not, the reason is logged and it runs without).
    pub fn open(config: &Config, instance: &str, log: &Logger) -> Delivered {
        let capacity = config.retry_memory_chunks;
        let Some(j) = &config.journal else {
            return Delivered::new(capacity);
        };
        let opts = journal::Options {
            folder: j.folder.clone(),
            instance: instance.to_string(),
            // What decides a chunk's records, their order and number.
            fingerprint: journal::fingerprint(&format!(
                "{:?} {}",
                config.encode,
                config.compression.max_input()
            )),
            max_bytes: j.max_bytes,
            sync_interval: j.sync_interval,
            capacity,
        };
        match Journal::open(opts, log.clone()) {
            Ok((journal, known)) => {
                log.info(format_args!(
                    "journal {}: {} chunk(s) known from before",
                    journal.path().display(),
                    known.len()
                ));
                Delivered::with_journal(capacity, journal, known)
            }
            Err(e) => {
                log.error(format_args!(
                    "{e}; delivering without it (chunks Fluent Bit sends again after a crash may be delivered twice)"
                ));
                Delivered::new(capacity)
            }
        }
    }

    pub fn journal(&self) -> Option<&Journal> {
        self.journal.as_ref()
    }

    /// Stores which of the chunk's records were accepted (for Fluent Bit's retry of it).
    pub fn remember(&self, key: ChunkKey, accepted: &[bool]) {
        if self.capacity == 0 || !accepted.iter().any(|&a| a) {
            return;
        }
        self.insert(key, State::from_accepted(accepted));
    }

    fn insert(&self, key: ChunkKey, state: State) {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if g.map.insert(key, state).is_none() {
            g.order.push_back(key);
            *g.sizes.entry(key.size()).or_default() += 1;
        }
        while g.map.len() > self.capacity {
            match g.order.pop_front() {
                Some(old) => {
                    g.remove(&old);
                }
                None => break,
            }
        }
    }

    /// Takes (and forgets) what was accepted of this chunk before, if it has `records`.
    pub fn take(&self, key: &ChunkKey, records: usize) -> Option<Vec<bool>> {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let state = g.remove(key)?;
        g.order.retain(|k| k != key);
        (state.records() as usize == records).then(|| state.accepted())
    }

    /// Whether a chunk of this tag and length of bytes may be remembered: when not, `take`
    /// would find nothing and the chunk need not be hashed.
    pub fn may_hold(&self, tag: &str, len: usize) -> bool {
        let g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        !g.sizes.is_empty() && g.sizes.contains_key(&(tag_hash(tag), len as u64))
    }

    /// One call's accepted records of a chunk of `records`: to the journal, at once.
    /// Whether accepted records are written to a journal (else `accepted` does nothing and
    /// the caller need not collect them).
    pub fn journaled(&self) -> bool {
        self.journal.is_some()
    }

    pub fn accepted(&self, key: ChunkKey, records: usize, idx: &[u32]) {
        if let Some(j) = &self.journal {
            if !idx.is_empty() {
                j.append(&Entry::Accepted {
                    key,
                    records: records as u32,
                    ranges: ranges(idx),
                });
            }
        }
    }

    /// Every record of the chunk was accepted: to the journal, so that the chunk sent again
    /// after a crash (before Fluent Bit removed it) sends nothing.
    pub fn done(&self, key: ChunkKey, records: usize) {
        if let Some(j) = &self.journal {
            j.append(&Entry::Done {
                key,
                records: records as u32,
            });
        }
    }

    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .map
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_bits_and_forgets_the_oldest() {
        let d = Delivered::new(2);
        let k1 = ChunkKey::of("t", b"one");
        let k2 = ChunkKey::of("t", b"two");
        let k3 = ChunkKey::of("u", b"one");
        assert_ne!(k1, k3, "the tag is part of the key");
        let acc: Vec<bool> = (0..130).map(|i| i % 3 == 0).collect();
        d.remember(k1, &acc);
        d.remember(k2, &[true]);
        d.remember(k3, &[true, false]);
        assert_eq!(d.len(), 2);
        assert!(d.take(&k1, 130).is_none(), "the oldest was forgotten");
        assert_eq!(d.take(&k3, 2), Some(vec![true, false]));
        assert!(d.take(&k3, 2).is_none(), "taken once");
        d.remember(k1, &acc);
        assert_eq!(d.take(&k1, 130), Some(acc));
        d.remember(k1, &[false, false]);
        assert!(d.take(&k1, 2).is_none(), "nothing accepted: nothing kept");
    }

    #[test]
    fn may_hold_follows_what_is_remembered() {
        let d = Delivered::new(2);
        assert!(!d.may_hold("t", 3));
        let one = ChunkKey::of("t", b"one");
        let two = ChunkKey::of("t", b"two");
        d.remember(one, &[true]);
        d.remember(two, &[true]);
        // Same tag and length: both count; another tag or length cannot be remembered.
        assert!(d.may_hold("t", 3));
        assert!(!d.may_hold("u", 3));
        assert!(!d.may_hold("t", 4));
        assert!(d.take(&one, 1).is_some());
        assert!(
            d.may_hold("t", 3),
            "the other chunk of that size is still remembered"
        );
        // Evicted as the oldest: forgotten by may_hold too.
        d.remember(ChunkKey::of("t", b"three!"), &[true]);
        d.remember(ChunkKey::of("t", b"four!!"), &[true]);
        assert!(!d.may_hold("t", 3));
        assert!(d.may_hold("t", 6));
    }
}
