//! Remembers which records of a chunk Firehose already accepted when a flush answers
//! FLB_RETRY, so that Fluent Bit's retry of the same chunk sends only the rest.
//!
//! Keyed by the tag and a 64-bit hash (xxh3) and length of the chunk bytes. Bounded: at most
//! `capacity` chunks (oldest forgotten first), each kept as a bitset of one bit per record,
//! so the memory is at most `capacity × records per chunk / 8` bytes (1,024 chunks of 2,000
//! records: 256 KiB). A forgotten chunk is sent whole again: at-least-once still holds.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChunkKey {
    tag: u64,
    data: u64,
    len: usize,
}

impl ChunkKey {
    pub fn of(tag: &str, chunk: &[u8]) -> ChunkKey {
        ChunkKey {
            tag: xxhash_rust::xxh3::xxh3_64(tag.as_bytes()),
            data: xxhash_rust::xxh3::xxh3_64(chunk),
            len: chunk.len(),
        }
    }
}

#[derive(Debug)]
struct Entry {
    records: usize,
    bits: Vec<u64>,
}

#[derive(Debug, Default)]
struct Inner {
    map: HashMap<ChunkKey, Entry>,
    order: VecDeque<ChunkKey>,
}

#[derive(Debug)]
pub struct Delivered {
    capacity: usize,
    inner: Mutex<Inner>,
}

impl Delivered {
    pub fn new(capacity: usize) -> Delivered {
        Delivered {
            capacity,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// Stores which of the chunk's records were accepted.
    pub fn remember(&self, key: ChunkKey, accepted: &[bool]) {
        if self.capacity == 0 || !accepted.iter().any(|&a| a) {
            return;
        }
        let mut bits = vec![0u64; accepted.len().div_ceil(64)];
        for (i, _) in accepted.iter().enumerate().filter(|(_, &a)| a) {
            bits[i / 64] |= 1 << (i % 64);
        }
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if g.map
            .insert(
                key,
                Entry {
                    records: accepted.len(),
                    bits,
                },
            )
            .is_none()
        {
            g.order.push_back(key);
        }
        while g.map.len() > self.capacity {
            match g.order.pop_front() {
                Some(old) => {
                    g.map.remove(&old);
                }
                None => break,
            }
        }
    }

    /// Takes (and forgets) what was accepted of this chunk before, if it has `records`.
    pub fn take(&self, key: &ChunkKey, records: usize) -> Option<Vec<bool>> {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let e = g.map.remove(key)?;
        g.order.retain(|k| k != key);
        (e.records == records).then(|| {
            (0..records)
                .map(|i| e.bits[i / 64] & (1 << (i % 64)) != 0)
                .collect()
        })
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
}
