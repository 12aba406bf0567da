//! A tiny msgpack lexer over a borrowed buffer.
//!
//! It reads one header at a time and never recurses, so hostile nesting cannot overflow a
//! stack, and it never allocates from a declared length: every length is checked against
//! the bytes actually left before it is used.

use thiserror::Error;

#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum LexError {
    #[error("truncated msgpack: a value runs past the end of the chunk")]
    Truncated,
    #[error("invalid msgpack marker 0xc1")]
    BadMarker,
}

/// One msgpack header. Container headers carry their declared item count; byte payloads
/// carry the position of their bytes in the buffer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Header {
    Nil,
    Bool(bool),
    Uint(u64),
    Int(i64),
    F32(f32),
    F64(f64),
    Str { start: usize, len: usize },
    Bin { start: usize, len: usize },
    Ext { ty: i8, start: usize, len: usize },
    Array(u32),
    Map(u32),
}

/// A cursor over a msgpack buffer.
#[derive(Debug, Clone)]
pub struct Lexer<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Lexer<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Lexer { buf, pos: 0 }
    }

    pub fn at(buf: &'a [u8], pos: usize) -> Self {
        Lexer { buf, pos }
    }

    pub fn pos(&self) -> usize {
        self.pos
    }

    pub fn buf(&self) -> &'a [u8] {
        self.buf
    }

    pub fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    /// The bytes of a `Str`/`Bin`/`Ext` payload.
    pub fn slice(&self, start: usize, len: usize) -> &'a [u8] {
        // Positions come from `next`, which checked them against the buffer.
        &self.buf[start..start + len]
    }

    #[inline]
    fn take(&mut self, n: usize) -> Result<&'a [u8], LexError> {
        if self.remaining() < n {
            return Err(LexError::Truncated);
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    #[inline]
    fn be<const N: usize>(&mut self) -> Result<[u8; N], LexError> {
        let s = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    #[inline(always)]
    fn payload(&mut self, len: usize) -> Result<usize, LexError> {
        let start = self.pos;
        self.take(len)?;
        Ok(start)
    }

    /// Reads the next header; payload bytes of strings, bins and exts are consumed too.
    ///
    /// Inlined into its callers in optimized builds: returned through memory, the header
    /// was written in pieces and read back whole (a store-forwarding stall per value). Not
    /// in debug builds, where each inlined copy would add its own stack slots to the
    /// encoder's frames.
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    pub fn read(&mut self) -> Result<Header, LexError> {
        let m = self.be::<1>()?[0];
        Ok(match m {
            0x00..=0x7f => Header::Uint(m as u64),
            0x80..=0x8f => Header::Map((m & 0x0f) as u32),
            0x90..=0x9f => Header::Array((m & 0x0f) as u32),
            0xa0..=0xbf => self.str_of((m & 0x1f) as usize)?,
            0xc0 => Header::Nil,
            0xc1 => return Err(LexError::BadMarker),
            0xc2 => Header::Bool(false),
            0xc3 => Header::Bool(true),
            0xc4 => {
                let n = self.be::<1>()?[0] as usize;
                self.bin_of(n)?
            }
            0xc5 => {
                let n = u16::from_be_bytes(self.be()?) as usize;
                self.bin_of(n)?
            }
            0xc6 => {
                let n = u32::from_be_bytes(self.be()?) as usize;
                self.bin_of(n)?
            }
            0xc7 => {
                let n = self.be::<1>()?[0] as usize;
                self.ext_of(n)?
            }
            0xc8 => {
                let n = u16::from_be_bytes(self.be()?) as usize;
                self.ext_of(n)?
            }
            0xc9 => {
                let n = u32::from_be_bytes(self.be()?) as usize;
                self.ext_of(n)?
            }
            0xca => Header::F32(f32::from_be_bytes(self.be()?)),
            0xcb => Header::F64(f64::from_be_bytes(self.be()?)),
            0xcc => Header::Uint(self.be::<1>()?[0] as u64),
            0xcd => Header::Uint(u16::from_be_bytes(self.be()?) as u64),
            0xce => Header::Uint(u32::from_be_bytes(self.be()?) as u64),
            0xcf => Header::Uint(u64::from_be_bytes(self.be()?)),
            0xd0 => Header::Int(i8::from_be_bytes(self.be()?) as i64),
            0xd1 => Header::Int(i16::from_be_bytes(self.be()?) as i64),
            0xd2 => Header::Int(i32::from_be_bytes(self.be()?) as i64),
            0xd3 => Header::Int(i64::from_be_bytes(self.be()?)),
            0xd4 => self.ext_of(1)?,
            0xd5 => self.ext_of(2)?,
            0xd6 => self.ext_of(4)?,
            0xd7 => self.ext_of(8)?,
            0xd8 => self.ext_of(16)?,
            0xd9 => {
                let n = self.be::<1>()?[0] as usize;
                self.str_of(n)?
            }
            0xda => {
                let n = u16::from_be_bytes(self.be()?) as usize;
                self.str_of(n)?
            }
            0xdb => {
                let n = u32::from_be_bytes(self.be()?) as usize;
                self.str_of(n)?
            }
            0xdc => Header::Array(u16::from_be_bytes(self.be()?) as u32),
            0xdd => Header::Array(u32::from_be_bytes(self.be()?)),
            0xde => Header::Map(u16::from_be_bytes(self.be()?) as u32),
            0xdf => Header::Map(u32::from_be_bytes(self.be()?)),
            0xe0..=0xff => Header::Int(m as i8 as i64),
        })
    }

    #[inline(always)]
    fn str_of(&mut self, len: usize) -> Result<Header, LexError> {
        let start = self.payload(len)?;
        Ok(Header::Str { start, len })
    }

    #[inline(always)]
    fn bin_of(&mut self, len: usize) -> Result<Header, LexError> {
        let start = self.payload(len)?;
        Ok(Header::Bin { start, len })
    }

    #[inline(always)]
    fn ext_of(&mut self, len: usize) -> Result<Header, LexError> {
        let ty = self.be::<1>()?[0] as i8;
        let start = self.payload(len)?;
        Ok(Header::Ext { ty, start, len })
    }

    /// Fluent Bit's EventTime (ext type 0, 8 bytes: big-endian u32 seconds and nanoseconds)
    /// as (seconds, nanoseconds), when `h` is one.
    pub fn event_time(&self, h: Header) -> Option<(u32, u32)> {
        match h {
            Header::Ext {
                ty: 0,
                start,
                len: 8,
            } => {
                let b = self.slice(start, 8);
                Some((
                    u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
                    u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
                ))
            }
            _ => None,
        }
    }

    /// After reading header `h`: skips the items of a container (nothing for scalars).
    pub fn skip_contents(&mut self, h: Header) -> Result<(), LexError> {
        let n = match h {
            Header::Array(n) => n as u64,
            Header::Map(n) => 2 * n as u64,
            _ => return Ok(()),
        };
        if n > self.remaining() as u64 {
            return Err(LexError::Truncated);
        }
        for _ in 0..n {
            self.skip_value()?;
        }
        Ok(())
    }

    /// Skips one whole value (with everything nested in it) without recursion.
    pub fn skip_value(&mut self) -> Result<(), LexError> {
        // Items still to read; every item takes at least one byte, so a count larger than
        // the bytes left is a truncated buffer and is rejected at once.
        let mut pending: u64 = 1;
        while pending > 0 {
            pending -= 1;
            match self.read()? {
                Header::Array(n) => pending += n as u64,
                Header::Map(n) => pending += 2 * n as u64,
                _ => {}
            }
            if pending > self.remaining() as u64 {
                return Err(LexError::Truncated);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_scalars_and_containers() {
        let mut buf = Vec::new();
        rmp::encode::write_map_len(&mut buf, 1).unwrap();
        rmp::encode::write_str(&mut buf, "k").unwrap();
        rmp::encode::write_array_len(&mut buf, 3).unwrap();
        rmp::encode::write_sint(&mut buf, -300).unwrap();
        rmp::encode::write_f64(&mut buf, 1.5).unwrap();
        rmp::encode::write_bin(&mut buf, b"\x00\x01").unwrap();
        let mut lx = Lexer::new(&buf);
        assert_eq!(lx.read().unwrap(), Header::Map(1));
        match lx.read().unwrap() {
            Header::Str { start, len } => assert_eq!(lx.slice(start, len), b"k"),
            h => panic!("{h:?}"),
        }
        assert_eq!(lx.read().unwrap(), Header::Array(3));
        assert_eq!(lx.read().unwrap(), Header::Int(-300));
        assert_eq!(lx.read().unwrap(), Header::F64(1.5));
        assert!(matches!(lx.read().unwrap(), Header::Bin { len: 2, .. }));
        assert!(lx.is_empty());
        assert_eq!(lx.read(), Err(LexError::Truncated));
    }

    #[test]
    fn skip_handles_deep_nesting_and_rejects_lying_lengths() {
        let mut buf = vec![0x91u8; 100_000];
        buf.push(0xc0);
        let mut lx = Lexer::new(&buf);
        lx.skip_value().unwrap();
        assert!(lx.is_empty());

        // array32 declaring 4 billion items in 5 bytes
        let lie = [0xdd, 0xff, 0xff, 0xff, 0xff];
        assert_eq!(Lexer::new(&lie).skip_value(), Err(LexError::Truncated));
        // str32 declaring 4 GiB
        let lie = [0xdb, 0xff, 0xff, 0xff, 0xff, b'a'];
        assert_eq!(Lexer::new(&lie).read(), Err(LexError::Truncated));
    }
}
