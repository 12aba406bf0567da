//! JSON text: strings escaped in one pass, sixteen bytes at a time (SWAR), UTF-8 validated
//! only when a byte above ASCII appears; floats; base64.

use base64::Engine;

pub(super) fn write_float(out: &mut Vec<u8>, v: f64) {
    if v.is_finite() {
        out.extend_from_slice(ryu::Buffer::new().format_finite(v).as_bytes());
    } else {
        out.extend_from_slice(b"null");
    }
}

pub(super) fn write_base64(out: &mut Vec<u8>, data: &[u8]) {
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
pub(super) static ESCAPE: [u8; 256] = {
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
    // Most strings: no dots to replace, valid UTF-8: one pass.
    if replace_dots.is_none() && write_valid(out, bytes) {
        return;
    }
    let lossy;
    let mut s: &[u8] = if std::str::from_utf8(bytes).is_ok() {
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
    // Valid UTF-8 now: written in one pass.
    write_valid(out, s);
}

/// Writes the string at `buf[start..start + len]` like [`write_str`]. A short string
/// that is ASCII with nothing to escape (most keys and many values) is checked and copied
/// as one fixed 16-byte block read from `buf` (which holds more bytes after it), with no
/// loop and no variable-length copy: the bytes past the string are masked out of the
/// check and cut off the copy. Inlined in optimized builds only (see `Lexer::read`).
#[cfg_attr(not(debug_assertions), inline(always))]
#[cfg_attr(debug_assertions, inline)]
pub fn write_str_in(
    out: &mut Vec<u8>,
    buf: &[u8],
    start: usize,
    len: usize,
    replace_dots: Option<&str>,
) {
    if len <= SHORT && replace_dots.is_none() {
        if let Some(block) = buf.get(start..start + SHORT) {
            let word = |k: usize| {
                let mut x = [0u8; 8];
                x.copy_from_slice(&block[k * 8..k * 8 + 8]);
                u64::from_le_bytes(x)
            };
            // Only the string's own bytes count. A false flag only ever sits above a
            // true one (see `escape_flags`), so masking off the bytes past `len` is exact.
            let mask = |k: usize| match len.saturating_sub(k * 8) {
                0 => 0,
                n if n >= 8 => u64::MAX,
                n => (1u64 << (n * 8)) - 1,
            };
            let (a, b) = (word(0), word(1));
            let bad = ((escape_flags(a) | (a & HIGH)) & mask(0))
                | ((escape_flags(b) | (b & HIGH)) & mask(1));
            if bad == 0 {
                out.reserve(SHORT + 2);
                out.push(b'"');
                let at = out.len();
                out.extend_from_slice(block);
                out.truncate(at + len);
                out.push(b'"');
                return;
            }
        }
    }
    write_str(out, &buf[start..start + len], replace_dots);
}

/// Strings up to this many bytes may take `write_str_in`'s fixed-block path.
const SHORT: usize = 16;

/// Writes `s` as a JSON string in one pass (sixteen bytes at a time while none needs a
/// look), escaping as it goes. A byte above ASCII has the whole of `s` checked for UTF-8
/// once; if it is not valid, `out` is left as it was and `false` returned.
fn write_valid(out: &mut Vec<u8>, s: &[u8]) -> bool {
    out.reserve(s.len() + 2);
    // Most log strings are short, ASCII and need no escape: one check, one copy.
    if is_plain(s) {
        out.push(b'"');
        out.extend_from_slice(s);
        out.push(b'"');
        return true;
    }
    let start = out.len();
    out.push(b'"');
    // Once `s` is known to be valid UTF-8, bytes above ASCII need no look.
    let mut high = HIGH;
    let mut run = 0;
    let mut i = 0;
    while i < s.len() {
        if let Some(block) = s.get(i..i + 16) {
            let (a, b) = block.split_at(8);
            let word = |w: &[u8]| {
                let mut x = [0u8; 8];
                x.copy_from_slice(w);
                u64::from_le_bytes(x)
            };
            let (a, b) = (word(a), word(b));
            if !needs_escape(a) && !needs_escape(b) && (a | b) & high == 0 {
                i += 16;
                continue;
            }
        }
        // Byte by byte to the end of this block (or of `s`).
        let end = (i + 16).min(s.len());
        while i < end {
            let c = s[i];
            if c >= 0x80 && high != 0 {
                if std::str::from_utf8(s).is_err() {
                    out.truncate(start);
                    return false;
                }
                high = 0;
            }
            let e = ESCAPE[c as usize];
            if e != 0 {
                out.extend_from_slice(&s[run..i]);
                run = i + 1;
                if e == b'u' {
                    const HEX: &[u8; 16] = b"0123456789abcdef";
                    out.extend_from_slice(b"\\u00");
                    out.push(HEX[(c >> 4) as usize]);
                    out.push(HEX[(c & 0xf) as usize]);
                } else {
                    out.push(b'\\');
                    out.push(e);
                }
            }
            i += 1;
        }
    }
    out.extend_from_slice(&s[run..]);
    out.push(b'"');
    true
}

const HIGH: u64 = 0x8080_8080_8080_8080;

/// Whether `s` is all ASCII with nothing to escape: a branch-free fold over blocks of
/// 64 bytes, which the compiler turns into a few vector compares per block (64 measured
/// faster than 16, 32, 128 or 256 on both benches' records).
#[inline]
fn is_plain(s: &[u8]) -> bool {
    let plain = |ok: bool, &b: &u8| ok & (0x20..0x80).contains(&b) & (b != b'"') & (b != b'\\');
    let mut blocks = s.chunks_exact(BLOCK);
    for block in &mut blocks {
        if !block.iter().fold(true, plain) {
            return false;
        }
    }
    blocks.remainder().iter().fold(true, plain)
}
const BLOCK: usize = 64;

/// Whether any byte of `w` is a control character (< 0x20), `"` or `\\`.
#[inline]
pub(super) fn needs_escape(w: u64) -> bool {
    escape_flags(w) != 0
}

/// The high bit of each byte of `w` that is a control character (< 0x20), `"` or `\\`
/// (SWAR: the classic "has a zero byte" and "has a byte less than n" bit tricks). A
/// subtraction's borrow can also flag bytes above a flagged one, never below it: the
/// lowest flag is always a true one.
#[inline(always)]
fn escape_flags(w: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    let has_zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
    let below_space = w.wrapping_sub(ONES * 0x20) & !w & HIGH;
    below_space | has_zero(w ^ (ONES * b'"' as u64)) | has_zero(w ^ (ONES * b'\\' as u64))
}

#[cfg(test)]
mod swar_tests {
    /// Every special byte (escapes, multi-byte UTF-8, invalid UTF-8) at every position of
    /// strings around the block sizes (16 and 64 bytes), against serde_json's text of the lossy string.
    #[test]
    fn one_pass_writer_matches_serde_json_at_every_position() {
        let specials: [&[u8]; 7] = [
            b"\x01",
            b"\"",
            b"\\",
            b"\n",
            "\u{e9}".as_bytes(),
            "\u{1f600}".as_bytes(),
            b"\xff",
        ];
        for len in [0usize, 1, 15, 16, 17, 31, 32, 33, 47, 63, 64, 65, 129] {
            for pos in 0..=len {
                for sp in specials {
                    for second in [None, Some(b"\t".as_slice()), Some(b"\xc3".as_slice())] {
                        let mut v: Vec<u8> = (0..len).map(|k| b'a' + (k % 26) as u8).collect();
                        v.splice(pos..pos, sp.iter().copied());
                        if let Some(x) = second {
                            v.extend_from_slice(x);
                        }
                        let mut out = b"prefix".to_vec();
                        super::write_str(&mut out, &v, None);
                        let want = serde_json::to_string(&String::from_utf8_lossy(&v)).unwrap();
                        assert_eq!(String::from_utf8_lossy(&out[6..]), want, "{v:?}");
                        assert_eq!(&out[..6], b"prefix");
                    }
                }
            }
        }
    }

    /// The fixed-block path for short strings against `write_str`: every special byte at
    /// every position of strings up to past the block size, followed in the buffer by
    /// bytes that would need escaping (they must not count), and with too few bytes left
    /// in the buffer for a whole block.
    #[test]
    fn short_strings_in_a_buffer_match_write_str() {
        let specials: [&[u8]; 8] = [
            b"\x00",
            b"\x1f",
            b" ",
            b"\"",
            b"\\",
            b"\x7f",
            "\u{e9}".as_bytes(),
            b"\xff",
        ];
        let afters: [&[u8]; 4] = [
            b"",
            b"\"\\\n\x00\xff",
            b"                ",
            b"\x01abcdefghijklmnopq",
        ];
        for len in 0..=18usize {
            for pos in 0..=len {
                for sp in specials.iter().map(Some).chain([None]) {
                    let mut v: Vec<u8> = (0..len).map(|k| b'a' + (k % 26) as u8).collect();
                    if let Some(sp) = sp {
                        v.splice(pos..pos, sp.iter().copied());
                    }
                    for after in afters {
                        let mut buf = b"xy".to_vec();
                        buf.extend_from_slice(&v);
                        buf.extend_from_slice(after);
                        let mut want = b"prefix".to_vec();
                        super::write_str(&mut want, &v, None);
                        let mut got = b"prefix".to_vec();
                        super::write_str_in(&mut got, &buf, 2, v.len(), None);
                        assert_eq!(got, want, "{v:?} then {after:?}");
                        let mut dots = b"prefix".to_vec();
                        super::write_str_in(&mut dots, &buf, 2, v.len(), Some("_"));
                        let mut want = b"prefix".to_vec();
                        super::write_str(&mut want, &v, Some("_"));
                        assert_eq!(dots, want);
                    }
                }
            }
        }
    }

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
