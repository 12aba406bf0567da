//! Event → one Firehose record: a JSON object and a newline (JSON Lines), or with `log_key`
//! the raw value of that key and a newline.
//!
//! msgpack is transcoded straight into the output buffer with an explicit stack (no value
//! tree, no recursion over nesting depth). Mapping:
//! str → string (invalid UTF-8 replaced by U+FFFD); bin → base64 string; EventTime ext
//! (type 0, 8 bytes) → number `seconds.nanoseconds`; any other ext → base64 string of its
//! payload; non-string map keys → their JSON text as a string (an array or map key nested
//! more than 3 deep, or any key text over 4 KiB: base64 of its msgpack bytes); NaN and ±inf
//! → null.

use crate::decode::{Event, EventTime};
use crate::msgpack::{Header, LexError, Lexer};
use crate::timefmt::TimeFormat;
use base64::Engine;
use thiserror::Error;

/// What shapes a record; built by `config`.
#[derive(Debug, Clone)]
pub struct EncodeOptions {
    pub time_key: Option<String>,
    pub time_format: TimeFormat,
    pub log_key: Option<String>,
    pub data_keys: Option<Vec<String>>,
    pub replace_dots: Option<String>,
}

impl Default for EncodeOptions {
    fn default() -> Self {
        EncodeOptions {
            time_key: None,
            time_format: TimeFormat::parse(DEFAULT_TIME_FORMAT).unwrap_or_else(|_| unreachable!()),
            log_key: None,
            data_keys: None,
            replace_dots: None,
        }
    }
}

pub const DEFAULT_TIME_FORMAT: &str = "%Y-%m-%dT%H:%M:%S";

#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum EncodeError {
    #[error("malformed body: {0}")]
    Malformed(#[from] LexError),
    #[error("the record has no log_key field")]
    MissingLogKey,
    #[error("the encoded record is larger than {0} bytes")]
    TooLarge(usize),
}

/// Array or map keys nested inside keys deeper than this become base64 of their msgpack
/// bytes: each level recurses and re-escapes the text below it (doubling every `"` and
/// `\`), so depth must stay small. The record is kept either way.
const MAX_KEY_DEPTH: u32 = 3;
/// A non-string key whose JSON text is longer than this becomes base64 of its msgpack bytes
/// too, so a key can never grow a record beyond a few times its own size.
const MAX_KEY_TEXT: usize = 4096;

#[derive(Debug, Clone, Copy)]
enum Frame {
    Array { left: u32, first: bool },
    Map { left: u32, first: bool },
}

/// Reusable encoder: keeps its stack between records.
#[derive(Debug)]
pub struct Encoder {
    opts: EncodeOptions,
    log_key: Option<std::sync::Arc<str>>,
    stack: Vec<Frame>,
    scratch: Vec<u8>,
    /// The last time formatted for `time_key`: records of one chunk share their second.
    time_cache: Option<(EventTime, Vec<u8>)>,
    /// Output larger than this aborts the record (it could never be sent).
    limit: usize,
}

impl Encoder {
    pub fn new(opts: EncodeOptions, limit: usize) -> Self {
        Encoder {
            log_key: opts.log_key.as_deref().map(std::sync::Arc::from),
            opts,
            stack: Vec::new(),
            scratch: Vec::new(),
            time_cache: None,
            limit,
        }
    }

    pub fn options(&self) -> &EncodeOptions {
        &self.opts
    }

    /// Appends one record to `out`. On error `out` may hold a partial record: the caller
    /// truncates it back.
    pub fn encode(&mut self, ev: &Event<'_>, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        self.stack.clear();
        let start = out.len();
        let mut lx = Lexer::at(ev.chunk, ev.body.start);
        let n = match lx.read()? {
            Header::Map(n) => n,
            _ => return Err(EncodeError::Malformed(LexError::Truncated)),
        };
        if let Some(log_key) = self.log_key.clone() {
            for _ in 0..n {
                let key = lx.read()?;
                let wanted = matches!(key, Header::Str { start, len } if lx.slice(start, len) == log_key.as_bytes());
                if !wanted {
                    lx.skip_contents(key)?;
                    lx.skip_value()?;
                    continue;
                }
                let vpos = lx.pos();
                if let Header::Str { start, len } = lx.read()? {
                    // Raw text: the string itself, not a JSON string.
                    out.extend_from_slice(String::from_utf8_lossy(lx.slice(start, len)).as_bytes());
                } else {
                    lx = Lexer::at(ev.chunk, vpos);
                    self.value(&mut lx, out, 0, start)?;
                }
                out.push(b'\n');
                return self.check(out, start);
            }
            return Err(EncodeError::MissingLogKey);
        }

        out.push(b'{');
        let mut first = true;
        for _ in 0..n {
            let kpos = lx.pos();
            let key = lx.read()?;
            if let Some(keep) = &self.opts.data_keys {
                let wanted = match key {
                    Header::Str { start, len } => {
                        let k = lx.slice(start, len);
                        keep.iter().any(|w| w.as_bytes() == k)
                    }
                    _ => false,
                };
                if !wanted {
                    lx.skip_contents(key)?;
                    lx.skip_value()?;
                    continue;
                }
            }
            if !first {
                out.push(b',');
            }
            first = false;
            lx = Lexer::at(ev.chunk, kpos);
            self.key(&mut lx, out, 0, start)?;
            out.push(b':');
            self.value(&mut lx, out, 0, start)?;
        }
        if let Some(tk) = &self.opts.time_key {
            if !first {
                out.push(b',');
            }
            write_str(out, tk.as_bytes(), None);
            out.extend_from_slice(b":\"");
            let key = if self.opts.time_format.uses_fraction() {
                ev.time
            } else {
                EventTime {
                    sec: ev.time.sec,
                    nsec: 0,
                }
            };
            match &mut self.time_cache {
                Some((t, text)) if *t == key => out.extend_from_slice(text),
                cache => {
                    // The format is the user's: its text is escaped like any string.
                    let mut raw = Vec::with_capacity(32);
                    self.opts.time_format.write(ev.time, &mut raw);
                    let mut text = Vec::with_capacity(raw.len() + 2);
                    write_str(&mut text, &raw, None);
                    let text = text[1..text.len() - 1].to_vec();
                    out.extend_from_slice(&text);
                    *cache = Some((key, text));
                }
            }
            out.push(b'"');
        }
        out.extend_from_slice(b"}\n");
        self.check(out, start)
    }

    fn check(&self, out: &[u8], start: usize) -> Result<(), EncodeError> {
        if out.len() - start > self.limit {
            return Err(EncodeError::TooLarge(self.limit));
        }
        Ok(())
    }

    /// Writes a map key as a JSON string (non-string keys: their JSON text, quoted).
    fn key(
        &mut self,
        lx: &mut Lexer<'_>,
        out: &mut Vec<u8>,
        depth: u32,
        rec_start: usize,
    ) -> Result<(), EncodeError> {
        let kpos = lx.pos();
        let h = lx.read()?;
        if let Header::Str { start, len } = h {
            write_str(out, lx.slice(start, len), self.opts.replace_dots.as_deref());
            return Ok(());
        }
        // Only a container can hold keys of its own, so only a container recurses.
        let too_deep = depth >= MAX_KEY_DEPTH && matches!(h, Header::Array(_) | Header::Map(_));
        *lx = Lexer::at(lx.buf(), kpos);
        let text_start = out.len();
        if too_deep {
            lx.skip_value()?;
        } else {
            self.value(lx, out, depth + 1, rec_start)?;
        }
        if too_deep || out.len() - text_start > MAX_KEY_TEXT {
            out.truncate(text_start);
            write_base64(out, lx.slice(kpos, lx.pos() - kpos));
            return self.check(out, rec_start);
        }
        self.scratch.clear();
        self.scratch.extend_from_slice(&out[text_start..]);
        out.truncate(text_start);
        let text = std::mem::take(&mut self.scratch);
        write_str(out, &text, self.opts.replace_dots.as_deref());
        self.scratch = text;
        self.check(out, rec_start)
    }

    /// Transcodes one value (and all it contains) to JSON.
    fn value(
        &mut self,
        lx: &mut Lexer<'_>,
        out: &mut Vec<u8>,
        depth: u32,
        rec_start: usize,
    ) -> Result<(), EncodeError> {
        let base = self.stack.len();
        let mut h = lx.read()?;
        loop {
            match h {
                Header::Array(n) => {
                    out.push(b'[');
                    self.stack.push(Frame::Array {
                        left: n,
                        first: true,
                    });
                }
                Header::Map(n) => {
                    out.push(b'{');
                    self.stack.push(Frame::Map {
                        left: n,
                        first: true,
                    });
                }
                scalar => write_scalar(lx, scalar, out),
            }
            // Close finished containers, then read the next value.
            loop {
                let Some(top) = self.stack.len().checked_sub(1).filter(|&t| t >= base) else {
                    return Ok(());
                };
                match self.stack[top] {
                    Frame::Array { left: 0, .. } => {
                        out.push(b']');
                        self.stack.pop();
                    }
                    Frame::Map { left: 0, .. } => {
                        out.push(b'}');
                        self.stack.pop();
                        if out.len() - rec_start > self.limit {
                            return Err(EncodeError::TooLarge(self.limit));
                        }
                    }
                    Frame::Array { left, first } => {
                        self.stack[top] = Frame::Array {
                            left: left - 1,
                            first: false,
                        };
                        if !first {
                            out.push(b',');
                        }
                        h = lx.read()?;
                        break;
                    }
                    Frame::Map { left, first } => {
                        self.stack[top] = Frame::Map {
                            left: left - 1,
                            first: false,
                        };
                        if !first {
                            out.push(b',');
                        }
                        self.key(lx, out, depth, rec_start)?;
                        out.push(b':');
                        h = lx.read()?;
                        break;
                    }
                }
            }
        }
    }
}

fn write_scalar(lx: &Lexer<'_>, h: Header, out: &mut Vec<u8>) {
    match h {
        Header::Nil => out.extend_from_slice(b"null"),
        Header::Bool(true) => out.extend_from_slice(b"true"),
        Header::Bool(false) => out.extend_from_slice(b"false"),
        Header::Uint(v) => out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes()),
        Header::Int(v) => out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes()),
        Header::F32(v) => write_float(out, v as f64),
        Header::F64(v) => write_float(out, v),
        Header::Str { start, len } => write_str(out, lx.slice(start, len), None),
        Header::Bin { start, len } => write_base64(out, lx.slice(start, len)),
        Header::Ext { ty: 0, len: 8, .. } => {
            let (sec, nsec) = lx.event_time(h).unwrap_or((0, 0));
            out.extend_from_slice(itoa::Buffer::new().format(sec).as_bytes());
            out.push(b'.');
            let mut nb = itoa::Buffer::new();
            let ns = nb.format(nsec % 1_000_000_000);
            for _ in ns.len()..9 {
                out.push(b'0');
            }
            out.extend_from_slice(ns.as_bytes());
        }
        Header::Ext { start, len, .. } => write_base64(out, lx.slice(start, len)),
        Header::Array(_) | Header::Map(_) => {}
    }
}

fn write_float(out: &mut Vec<u8>, v: f64) {
    if v.is_finite() {
        out.extend_from_slice(ryu::Buffer::new().format_finite(v).as_bytes());
    } else {
        out.extend_from_slice(b"null");
    }
}

fn write_base64(out: &mut Vec<u8>, data: &[u8]) {
    out.push(b'"');
    let start = out.len();
    let n = base64::encoded_len(data.len(), true).unwrap_or(0);
    out.resize(start + n, 0);
    let written = base64::engine::general_purpose::STANDARD
        .encode_slice(data, &mut out[start..])
        .unwrap_or(0);
    out.truncate(start + written);
    out.push(b'"');
}

/// Bytes that need escaping inside a JSON string: 0 = none, otherwise the escape letter
/// (`u` for \u00XX).
static ESCAPE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = b'u';
        i += 1;
    }
    t[b'\n' as usize] = b'n';
    t[b'\r' as usize] = b'r';
    t[b'\t' as usize] = b't';
    t[0x08] = b'b';
    t[0x0c] = b'f';
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    t
};

/// Writes `bytes` as a JSON string; invalid UTF-8 becomes U+FFFD, and in keys `.` may be
/// replaced.
pub fn write_str(out: &mut Vec<u8>, bytes: &[u8], replace_dots: Option<&str>) {
    let lossy;
    // ASCII (most log text) is valid UTF-8: the cheap word-at-a-time check suffices.
    let mut s: &[u8] = if bytes.is_ascii() || std::str::from_utf8(bytes).is_ok() {
        bytes
    } else {
        lossy = String::from_utf8_lossy(bytes).into_owned();
        lossy.as_bytes()
    };
    let replaced;
    if let Some(r) = replace_dots {
        if s.contains(&b'.') {
            // `s` is valid UTF-8 here, so the lossy conversion copies it unchanged.
            replaced = String::from_utf8_lossy(s).replace('.', r);
            s = replaced.as_bytes();
        }
    }
    out.reserve(s.len() + 2);
    out.push(b'"');
    let mut run = 0;
    let mut i = 0;
    while i < s.len() {
        // Eight bytes at a time while none needs escaping.
        if let Some(word) = s.get(i..i + 8) {
            let w = u64::from_le_bytes([
                word[0], word[1], word[2], word[3], word[4], word[5], word[6], word[7],
            ]);
            if !needs_escape(w) {
                i += 8;
                continue;
            }
        }
        let b = s[i];
        let e = ESCAPE[b as usize];
        if e != 0 {
            out.extend_from_slice(&s[run..i]);
            run = i + 1;
            if e == b'u' {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[(b >> 4) as usize]);
                out.push(HEX[(b & 0xf) as usize]);
            } else {
                out.push(b'\\');
                out.push(e);
            }
        }
        i += 1;
    }
    out.extend_from_slice(&s[run..]);
    out.push(b'"');
}

/// Whether any byte of `w` is a control character (< 0x20), `"` or `\\` (SWAR: the
/// classic "has a zero byte" and "has a byte less than n" bit tricks).
#[inline]
fn needs_escape(w: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let has_zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
    let below_space = w.wrapping_sub(ONES * 0x20) & !w & HIGH;
    (below_space | has_zero(w ^ (ONES * b'"' as u64)) | has_zero(w ^ (ONES * b'\\' as u64))) != 0
}

/// Hash of the value of top-level `key` in the event's body (its msgpack bytes), or 0 when
/// the key is missing: records with equal values hash equally (`balance key`).
pub fn key_hash(ev: &Event<'_>, key: &str) -> u64 {
    let mut lx = Lexer::at(ev.chunk, ev.body.start);
    let Ok(Header::Map(n)) = lx.read() else {
        return 0;
    };
    for _ in 0..n {
        let Ok(k) = lx.read() else { return 0 };
        let wanted =
            matches!(k, Header::Str { start, len } if lx.slice(start, len) == key.as_bytes());
        if lx.skip_contents(k).is_err() {
            return 0;
        }
        let start = lx.pos();
        if lx.skip_value().is_err() {
            return 0;
        }
        if wanted {
            return xxhash_rust::xxh3::xxh3_64(&ev.chunk[start..lx.pos()]);
        }
    }
    0
}

#[cfg(test)]
mod swar_tests {
    #[test]
    fn needs_escape_matches_the_table_for_every_byte_at_every_position() {
        for b in 0..=255u8 {
            for pos in 0..8 {
                let mut bytes = *b"abcdefgh";
                bytes[pos] = b;
                let expect = super::ESCAPE[b as usize] != 0;
                assert_eq!(
                    super::needs_escape(u64::from_le_bytes(bytes)),
                    expect,
                    "byte {b:#x} at {pos}"
                );
            }
        }
    }
}
