//! JSON text: strings escaped eight bytes at a time (SWAR), with an ASCII fast path
//! before UTF-8 validation; floats; base64.

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
pub(super) fn needs_escape(w: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let has_zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
    let below_space = w.wrapping_sub(ONES * 0x20) & !w & HIGH;
    (below_space | has_zero(w ^ (ONES * b'"' as u64)) | has_zero(w ^ (ONES * b'\\' as u64))) != 0
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
