//! The encoded records of one chunk (or a pack of chunks), back to back in one buffer.

use std::ops::Range;

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

    /// Records `first..end` back to back (they are adjacent in the buffer).
    pub fn span(&self, first: usize, end: usize) -> &[u8] {
        let start = self.range(first).start;
        let stop = self.range(end - 1).end;
        &self.data[start..stop]
    }

    pub fn record_len(&self, i: usize) -> usize {
        self.range(i).len()
    }
}
