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

use super::json::{write_base64, write_float, write_str, write_str_in};
use crate::codec::decode::{Event, EventTime};
use crate::codec::msgpack::{Header, LexError, Lexer};
use thiserror::Error;

pub use crate::config::{EncodeOptions, DEFAULT_TIME_FORMAT};

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
    /// While truncating: string values longer than this many bytes are cut.
    cap: Option<usize>,
    /// Where the last encoded body ended in its chunk, when it was read whole.
    body_end: Option<usize>,
}

/// Ends every string value cut by `oversize_policy truncate`, for the user to find.
pub const TRUNCATED_MARKER: &str = "...[truncated by firehose_fanout]";

impl Encoder {
    pub fn new(opts: EncodeOptions, limit: usize) -> Self {
        Encoder {
            log_key: opts.log_key.as_deref().map(std::sync::Arc::from),
            opts,
            stack: Vec::new(),
            scratch: Vec::new(),
            time_cache: None,
            limit,
            cap: None,
            body_end: None,
        }
    }

    pub fn options(&self) -> &EncodeOptions {
        &self.opts
    }

    /// Where the body of the record last encoded ends in its chunk, if it was read whole
    /// (so the decoder need not read it again).
    pub fn body_end(&self) -> Option<usize> {
        self.body_end
    }

    /// As `encode`; a record over the limit is, with `oversize_policy truncate`, written
    /// again with its longest string values cut (valid UTF-8 and JSON, still one line, each
    /// cut ending in [`TRUNCATED_MARKER`]) as little as makes it fit. `Ok(true)`: cut.
    pub fn encode_or_truncate(
        &mut self,
        ev: &Event<'_>,
        out: &mut Vec<u8>,
    ) -> Result<bool, EncodeError> {
        let start = out.len();
        match self.encode(ev, out) {
            Err(EncodeError::TooLarge(_)) if self.opts.truncate_oversize => {}
            other => return other.map(|()| false),
        }
        // The longest cap that fits: binary search (an oversize record is rare).
        let (mut lo, mut hi) = (0usize, self.limit);
        let mut best = None;
        while lo <= hi {
            let mid = lo + (hi - lo) / 2;
            out.truncate(start);
            self.cap = Some(mid);
            let fits = self.encode(ev, out).is_ok();
            if fits {
                best = Some(mid);
                lo = mid + 1;
            } else if mid == 0 {
                break;
            } else {
                hi = mid - 1;
            }
        }
        out.truncate(start);
        self.cap = best;
        let r = match best {
            Some(_) => self.encode(ev, out).map(|()| true),
            // Too large even with every string cut: not strings that make it large.
            None => Err(EncodeError::TooLarge(self.limit)),
        };
        self.cap = None;
        r
    }

    /// Appends one record to `out`. On error `out` may hold a partial record: the caller
    /// truncates it back.
    pub fn encode(&mut self, ev: &Event<'_>, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        self.stack.clear();
        self.body_end = None;
        let start = out.len();
        let mut lx = Lexer::at(ev.chunk, ev.body);
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
                    let (text, cut) = capped(lx.slice(start, len), self.cap);
                    out.extend_from_slice(String::from_utf8_lossy(text).as_bytes());
                    if cut {
                        out.extend_from_slice(TRUNCATED_MARKER.as_bytes());
                    }
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
            if !self.str_key(&lx, key, out) {
                lx = Lexer::at(ev.chunk, kpos);
                self.key(&mut lx, out, 0, start)?;
            }
            out.push(b':');
            self.value(&mut lx, out, 0, start)?;
        }
        // Every key and value of the map was read.
        self.body_end = Some(lx.pos());
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

    /// Writes the usual key, a string whose header `h` is already read; `false` for any
    /// other key (then written by `key`, from its header).
    #[inline(always)]
    fn str_key(&self, lx: &Lexer<'_>, h: Header, out: &mut Vec<u8>) -> bool {
        let Header::Str { start, len } = h else {
            return false;
        };
        write_str_in(out, lx.buf(), start, len, self.opts.replace_dots.as_deref());
        true
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
                scalar => write_scalar(lx, scalar, out, self.cap),
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
                        let kpos = lx.pos();
                        let key = lx.read()?;
                        if !self.str_key(lx, key, out) {
                            *lx = Lexer::at(lx.buf(), kpos);
                            self.key(lx, out, depth, rec_start)?;
                        }
                        out.push(b':');
                        h = lx.read()?;
                        break;
                    }
                }
            }
        }
    }
}

/// The first bytes of `s` up to `cap` (cut on a UTF-8 character boundary), and whether it
/// was cut.
fn capped(s: &[u8], cap: Option<usize>) -> (&[u8], bool) {
    match cap {
        Some(c) if s.len() > c => {
            let mut end = c;
            // Back off continuation bytes (10xxxxxx): never half a character.
            while end > 0 && s[end] & 0xC0 == 0x80 {
                end -= 1;
            }
            (&s[..end], true)
        }
        _ => (s, false),
    }
}

fn write_scalar(lx: &Lexer<'_>, h: Header, out: &mut Vec<u8>, cap: Option<usize>) {
    match h {
        Header::Nil => out.extend_from_slice(b"null"),
        Header::Bool(true) => out.extend_from_slice(b"true"),
        Header::Bool(false) => out.extend_from_slice(b"false"),
        Header::Uint(v) => out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes()),
        Header::Int(v) => out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes()),
        Header::F32(v) => write_float(out, v as f64),
        Header::F64(v) => write_float(out, v),
        Header::Str { start, len } => match capped(lx.slice(start, len), cap) {
            (_, false) => write_str_in(out, lx.buf(), start, len, None),
            (s, true) => {
                let mut cut = s.to_vec();
                cut.extend_from_slice(TRUNCATED_MARKER.as_bytes());
                write_str(out, &cut, None);
            }
        },
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

/// Hash of the value of top-level `key` in the event's body (its msgpack bytes), or 0 when
/// the key is missing: records with equal values hash equally (`balance key`).
pub fn key_hash(ev: &Event<'_>, key: &str) -> u64 {
    let mut lx = Lexer::at(ev.chunk, ev.body);
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
