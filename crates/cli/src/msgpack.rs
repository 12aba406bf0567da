//! Just enough msgpack to cut a Fluent Bit chunk into its events, tell records from
//! group markers, and write record bodies: no value is decoded into a tree. Values are
//! skipped with the plugin's own lexer; events are built with `flb_host::chunk`.

use std::fmt;

use firehose_fanout::codec::msgpack::{Header, Lexer};

/// A chunk that is not a sequence of Fluent Bit events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkError {
    /// Byte offset of the problem.
    pub offset: usize,
    /// Index of the event being read.
    pub event: usize,
    /// What is wrong.
    pub what: &'static str,
}

impl fmt::Display for ChunkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "not a Fluent Bit chunk: event {} at byte {}: {}",
            self.event, self.offset, self.what
        )
    }
}

fn be(b: &[u8], pos: usize, n: usize) -> Option<u64> {
    let s = b.get(pos..pos.checked_add(n)?)?;
    Some(s.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x)))
}

/// End offset of the msgpack value starting at `start`, or `None` if the bytes are
/// truncated or invalid (any nesting depth; hostile counts end at the end of the buffer).
pub fn value_end(b: &[u8], start: usize) -> Option<usize> {
    let mut lx = Lexer::at(b, start);
    lx.skip_value().ok()?;
    Some(lx.pos())
}

/// One event of a chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    /// Byte range in the chunk.
    pub start: usize,
    pub end: usize,
    /// Where the body (the record map) starts.
    pub body_start: usize,
    /// A group start/end marker (OpenTelemetry), not a record.
    pub is_marker: bool,
}

/// Is the timestamp at `pos` a group marker (EventTime or integer seconds -1 / -2)?
fn is_marker_timestamp(b: &[u8], pos: usize) -> bool {
    match b.get(pos) {
        // fixext 8, type 0: EventTime, big-endian seconds then nanoseconds.
        Some(0xd7) if b.get(pos + 1) == Some(&0) => {
            matches!(be(b, pos + 2, 4), Some(0xFFFF_FFFF | 0xFFFF_FFFE))
        }
        // negative fixints -1 / -2
        Some(0xff | 0xfe) => true,
        _ => false,
    }
}

/// Cuts a chunk into events: `[[TIMESTAMP, METADATA], BODY]` (v2) or
/// `[TIMESTAMP, BODY]` (legacy).
pub fn events(chunk: &[u8]) -> Result<Vec<Event>, ChunkError> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < chunk.len() {
        let err = |what| ChunkError {
            offset: pos,
            event: out.len(),
            what,
        };
        if chunk[pos] != 0x92 {
            return Err(err("an event must be a 2-element array"));
        }
        let head = pos + 1;
        let (ts_pos, head_end) = if chunk.get(head) == Some(&0x92) {
            // v2: [TIMESTAMP, METADATA]
            let end = value_end(chunk, head).ok_or_else(|| err("truncated or invalid msgpack"))?;
            (head + 1, end)
        } else {
            let end = value_end(chunk, head).ok_or_else(|| err("truncated or invalid msgpack"))?;
            (head, end)
        };
        let ts = chunk.get(ts_pos).copied().unwrap_or(0xc1);
        let ts_ok =
            matches!(ts, 0xd7 | 0xc7 | 0xca | 0xcb | 0x00..=0x7f | 0xcc..=0xd3 | 0xe0..=0xff);
        if !ts_ok {
            return Err(err(
                "the timestamp is not an EventTime, an integer or a float",
            ));
        }
        let end = value_end(chunk, head_end).ok_or_else(|| err("truncated or invalid msgpack"))?;
        out.push(Event {
            start: pos,
            end,
            body_start: head_end,
            is_marker: is_marker_timestamp(chunk, ts_pos),
        });
        pos = end;
    }
    Ok(out)
}

/// Number of entries and header length of the map at the start of `b`.
fn map_header(b: &[u8]) -> Option<(u32, usize)> {
    let mut lx = Lexer::new(b);
    match lx.read().ok()? {
        Header::Map(n) => Some((n, lx.pos())),
        _ => None,
    }
}

fn ok<E: fmt::Debug>(r: Result<(), E>) {
    // Writing into a Vec cannot fail.
    debug_assert!(r.is_ok(), "{r:?}");
}

/// Writes a map header of `n` entries.
pub fn write_map_len(buf: &mut Vec<u8>, n: u32) {
    ok(rmp::encode::write_map_len(buf, n).map(|_| ()));
}

/// Writes a str header and the bytes (kept as they are, even invalid UTF-8, as Fluent
/// Bit's inputs do).
pub fn write_str_bytes(buf: &mut Vec<u8>, s: &[u8]) {
    ok(rmp::encode::write_str_len(buf, s.len() as u32).map(|_| ()));
    buf.extend_from_slice(s);
}

/// Writes an unsigned integer in its smallest encoding.
pub fn write_uint(buf: &mut Vec<u8>, v: u64) {
    ok(rmp::encode::write_uint(buf, v).map(|_| ()));
}

/// Copies `event` (a v2 or legacy event whose body is a map) with one more entry
/// `key: value` appended to its body. `None` if the body is not a map.
pub fn append_to_body(
    chunk: &[u8],
    event: &Event,
    key: &str,
    value: u64,
    out: &mut Vec<u8>,
) -> Option<()> {
    let body = chunk.get(event.body_start..event.end)?;
    let (n, header) = map_header(body)?;
    let n = n.checked_add(1)?;
    out.extend_from_slice(chunk.get(event.start..event.body_start)?);
    write_map_len(out, n);
    out.extend_from_slice(&body[header..]);
    write_str_bytes(out, key.as_bytes());
    write_uint(out, value);
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use flb_host::chunk::{ChunkBuilder, EventTime, MsgValue};
    use serde_json::json;

    #[test]
    fn cuts_v2_legacy_and_markers() {
        let mut c = ChunkBuilder::new();
        c.push_group_start(&json!({"a": 1}), &json!({"r": {}}))
            .push_v2(
                EventTime::new(1_700_000_000, 5),
                &json!({}),
                &json!({"m": "hi", "n": [1, 2.5, null]}),
            )
            .push_group_end()
            .push_legacy(1_700_000_001i64, &json!({"m": "old"}))
            .push_legacy(1.5f64, &json!({"m": "float"}));
        let data = c.finish();
        let ev = events(&data).unwrap();
        assert_eq!(ev.len(), 5);
        let markers: Vec<bool> = ev.iter().map(|e| e.is_marker).collect();
        assert_eq!(markers, vec![true, false, true, false, false]);
        assert_eq!(ev.last().unwrap().end, data.len());
    }

    #[test]
    fn rejects_garbage_and_truncation() {
        assert!(events(b"hello world\n").is_err());
        let mut c = ChunkBuilder::new();
        c.push_v2(EventTime::new(1, 0), &json!({}), &json!({"m": "hi"}));
        let data = c.finish();
        let e = events(&data[..data.len() - 1]).unwrap_err();
        assert_eq!(e.event, 0);
        assert!(e.to_string().contains("not a Fluent Bit chunk"), "{e}");
        // Huge declared lengths end at the buffer's end.
        assert_eq!(value_end(&[0xdd, 0xff, 0xff, 0xff, 0xff], 0), None);
        assert_eq!(value_end(&[0xdb, 0xff, 0xff, 0xff, 0xff], 0), None);
    }

    #[test]
    fn appends_a_key() {
        let mut c = ChunkBuilder::new();
        c.push_v2(EventTime::new(1, 0), &json!({}), &json!({"m": "hi"}));
        let data = c.finish();
        let ev = events(&data).unwrap();
        let mut out = Vec::new();
        append_to_body(&data, &ev[0], "id", 300, &mut out).unwrap();
        let mut expect = ChunkBuilder::new();
        let body = MsgValue::str_map(vec![
            ("m", MsgValue::str("hi")),
            ("id", MsgValue::Uint(300)),
        ]);
        expect.push_v2_raw_body(EventTime::new(1, 0), &body.encode());
        assert_eq!(out, expect.finish());
    }

    #[test]
    fn sample_chunk_has_2000_records() {
        let data = include_bytes!("../../../tests/data/samples/k8s_tail_chunk.msgpack");
        let ev = events(data).unwrap();
        assert_eq!(ev.iter().filter(|e| !e.is_marker).count(), 2000);
    }
}
