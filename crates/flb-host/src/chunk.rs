//! Building Fluent Bit chunks: the `data` buffer of a flush, a concatenation
//! of msgpack events (not one array).
//!
//! * v2 format (default since Fluent Bit 2.1): `[[TIMESTAMP, METADATA], BODY]`
//! * legacy / forward format: `[TIMESTAMP, BODY]`
//! * group markers (v2 events with EventTime seconds 0xFFFFFFFF = start,
//!   0xFFFFFFFE = end)
//!
//! TIMESTAMP is an EventTime (msgpack ext type 0, 8 bytes: big-endian u32
//! seconds, big-endian u32 nanoseconds), an integer or a float.
//!
//! ```
//! use flb_host::chunk::{ChunkBuilder, EventTime, MsgValue};
//! use serde_json::json;
//!
//! let mut c = ChunkBuilder::new();
//! c.push_group_start(&json!({"schema_url": "x"}), &json!({"resource": {}}))
//!  .push_v2(EventTime::new(1_700_000_000, 5), &json!({}), &json!({"message": "hi", "n": 1}))
//!  .push_group_end()
//!  .push_legacy(1_700_000_001i64, &json!({"message": "old"}))
//!  .push_v2_raw_body(EventTime::new(1, 0), &MsgValue::map(vec![
//!      (MsgValue::Int(1), MsgValue::Bin(vec![0, 1, 2])),
//!  ]).encode());
//! assert_eq!(c.event_count(), 5);
//! let data: Vec<u8> = c.finish();
//! # assert!(!data.is_empty());
//! ```

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

fn ok<T, E: std::fmt::Debug>(r: Result<T, E>) {
    r.expect("writing msgpack into a Vec cannot fail");
}

/// Fluent Bit's EventTime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EventTime {
    /// Seconds. Encoded as a u32 (wrapping), so -1 and -2 give the group
    /// marker values 0xFFFFFFFF and 0xFFFFFFFE.
    pub sec: i64,
    /// Nanoseconds.
    pub nsec: u32,
}

impl EventTime {
    /// The group-start marker's timestamp (seconds 0xFFFFFFFF).
    pub const GROUP_START: EventTime = EventTime { sec: -1, nsec: 0 };
    /// The group-end marker's timestamp (seconds 0xFFFFFFFE).
    pub const GROUP_END: EventTime = EventTime { sec: -2, nsec: 0 };

    /// An EventTime.
    pub fn new(sec: i64, nsec: u32) -> Self {
        EventTime { sec, nsec }
    }

    /// The current time.
    pub fn now() -> Self {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        EventTime {
            sec: d.as_secs() as i64,
            nsec: d.subsec_nanos(),
        }
    }

    /// The 10-byte msgpack encoding (fixext 8, type 0).
    pub fn encode(&self) -> [u8; 10] {
        let mut b = [0u8; 10];
        b[0] = 0xd7;
        b[1] = 0x00;
        b[2..6].copy_from_slice(&(self.sec as u32).to_be_bytes());
        b[6..10].copy_from_slice(&self.nsec.to_be_bytes());
        b
    }
}

/// An event timestamp in any of the encodings Fluent Bit accepts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Timestamp {
    /// msgpack ext type 0, 8 bytes.
    EventTime(EventTime),
    /// An integer number of seconds.
    Int(i64),
    /// A float number of seconds.
    Float(f64),
}

impl Timestamp {
    /// Appends the msgpack encoding to `buf`.
    pub fn write(&self, buf: &mut Vec<u8>) {
        match *self {
            Timestamp::EventTime(t) => buf.extend_from_slice(&t.encode()),
            Timestamp::Int(i) => ok(rmp::encode::write_sint(buf, i)),
            Timestamp::Float(f) => ok(rmp::encode::write_f64(buf, f)),
        }
    }
}

impl From<EventTime> for Timestamp {
    fn from(t: EventTime) -> Self {
        Timestamp::EventTime(t)
    }
}

impl From<i64> for Timestamp {
    fn from(i: i64) -> Self {
        Timestamp::Int(i)
    }
}

impl From<f64> for Timestamp {
    fn from(f: f64) -> Self {
        Timestamp::Float(f)
    }
}

/// Appends the msgpack encoding of a JSON value: strings → str, integers →
/// int (the smallest encoding), floats → float 64, bool, null → nil,
/// arrays and maps kept, in their order.
pub fn write_json(buf: &mut Vec<u8>, v: &Value) {
    Transcode(buf)
        .deserialize(v)
        .expect("a JSON value always transcodes");
}

/// Appends the msgpack encoding (as [`write_json`] encodes it) of one JSON value given
/// as text, transcoded as it is parsed, without building a [`Value`]: map keys stay in
/// their order in the text (duplicates included). Only whitespace may follow the
/// value. On error, `buf` may have been partly written.
///
/// ```
/// let mut b = Vec::new();
/// flb_host::chunk::write_json_text(&mut b, br#"{"z": 1, "a": [true, null]}"#).unwrap();
/// assert_eq!(b, [0x82, 0xa1, b'z', 0x01, 0xa1, b'a', 0x92, 0xc3, 0xc0]);
/// assert!(flb_host::chunk::write_json_text(&mut Vec::new(), b"{} {}").is_err());
/// ```
pub fn write_json_text(buf: &mut Vec<u8>, text: &[u8]) -> Result<(), serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(text);
    Transcode(buf).deserialize(&mut de)?;
    de.end()
}

/// Writes the JSON value it deserializes as msgpack. Maps and arrays go through a
/// scratch buffer first: JSON text does not say their length up front.
struct Transcode<'a>(&'a mut Vec<u8>);

impl<'de> DeserializeSeed<'de> for Transcode<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Transcode<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<(), E> {
        ok(rmp::encode::write_bool(self.0, v));
        Ok(())
    }
    fn visit_i64<E>(self, v: i64) -> Result<(), E> {
        ok(rmp::encode::write_sint(self.0, v));
        Ok(())
    }
    fn visit_u64<E>(self, v: u64) -> Result<(), E> {
        ok(rmp::encode::write_uint(self.0, v));
        Ok(())
    }
    fn visit_f64<E>(self, v: f64) -> Result<(), E> {
        ok(rmp::encode::write_f64(self.0, v));
        Ok(())
    }
    fn visit_str<E>(self, v: &str) -> Result<(), E> {
        ok(rmp::encode::write_str(self.0, v));
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        ok(rmp::encode::write_nil(self.0));
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut tmp = Vec::new();
        let mut n = 0u32;
        while seq.next_element_seed(Transcode(&mut tmp))?.is_some() {
            n += 1;
        }
        ok(rmp::encode::write_array_len(self.0, n));
        self.0.extend_from_slice(&tmp);
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut tmp = Vec::new();
        let mut n = 0u32;
        while map.next_key_seed(Transcode(&mut tmp))?.is_some() {
            map.next_value_seed(Transcode(&mut tmp))?;
            n += 1;
        }
        ok(rmp::encode::write_map_len(self.0, n));
        self.0.extend_from_slice(&tmp);
        Ok(())
    }
}

/// The msgpack encoding of a JSON value (see [`write_json`]).
pub fn json_to_msgpack(v: &Value) -> Vec<u8> {
    let mut b = Vec::new();
    write_json(&mut b, v);
    b
}

/// Any msgpack value, for bodies JSON cannot express (bin, ext, non-string
/// keys, invalid UTF-8 strings, f32, pre-encoded bytes).
#[derive(Debug, Clone, PartialEq)]
pub enum MsgValue {
    /// nil
    Nil,
    /// bool
    Bool(bool),
    /// Signed integer (smallest encoding).
    Int(i64),
    /// Unsigned integer (smallest encoding).
    Uint(u64),
    /// float 32
    F32(f32),
    /// float 64
    F64(f64),
    /// str
    Str(String),
    /// str whose bytes may be invalid UTF-8
    StrBytes(Vec<u8>),
    /// bin
    Bin(Vec<u8>),
    /// ext (type, data)
    Ext(i8, Vec<u8>),
    /// array
    Array(Vec<MsgValue>),
    /// map with any keys, in order (duplicates allowed)
    Map(Vec<(MsgValue, MsgValue)>),
    /// Bytes written as they are (may be invalid msgpack).
    Raw(Vec<u8>),
}

impl MsgValue {
    /// A str.
    pub fn str(s: &str) -> Self {
        MsgValue::Str(s.to_string())
    }

    /// A map.
    pub fn map(entries: Vec<(MsgValue, MsgValue)>) -> Self {
        MsgValue::Map(entries)
    }

    /// A map with str keys.
    pub fn str_map(entries: Vec<(&str, MsgValue)>) -> Self {
        MsgValue::Map(
            entries
                .into_iter()
                .map(|(k, v)| (MsgValue::str(k), v))
                .collect(),
        )
    }

    /// Converts a JSON value (as [`write_json`] encodes it).
    pub fn from_json(v: &Value) -> Self {
        match v {
            Value::Null => MsgValue::Nil,
            Value::Bool(b) => MsgValue::Bool(*b),
            Value::Number(n) => {
                if let Some(u) = n.as_u64() {
                    MsgValue::Uint(u)
                } else if let Some(i) = n.as_i64() {
                    MsgValue::Int(i)
                } else {
                    MsgValue::F64(n.as_f64().unwrap_or(f64::NAN))
                }
            }
            Value::String(s) => MsgValue::Str(s.clone()),
            Value::Array(a) => MsgValue::Array(a.iter().map(MsgValue::from_json).collect()),
            Value::Object(m) => MsgValue::Map(
                m.iter()
                    .map(|(k, x)| (MsgValue::Str(k.clone()), MsgValue::from_json(x)))
                    .collect(),
            ),
        }
    }

    /// Appends the msgpack encoding to `buf`.
    pub fn write(&self, buf: &mut Vec<u8>) {
        match self {
            MsgValue::Nil => ok(rmp::encode::write_nil(buf)),
            MsgValue::Bool(b) => ok(rmp::encode::write_bool(buf, *b)),
            MsgValue::Int(i) => ok(rmp::encode::write_sint(buf, *i)),
            MsgValue::Uint(u) => ok(rmp::encode::write_uint(buf, *u)),
            MsgValue::F32(f) => ok(rmp::encode::write_f32(buf, *f)),
            MsgValue::F64(f) => ok(rmp::encode::write_f64(buf, *f)),
            MsgValue::Str(s) => ok(rmp::encode::write_str(buf, s)),
            MsgValue::StrBytes(b) => {
                ok(rmp::encode::write_str_len(buf, b.len() as u32));
                buf.extend_from_slice(b);
            }
            MsgValue::Bin(b) => ok(rmp::encode::write_bin(buf, b)),
            MsgValue::Ext(ty, data) => {
                ok(rmp::encode::write_ext_meta(buf, data.len() as u32, *ty));
                buf.extend_from_slice(data);
            }
            MsgValue::Array(a) => {
                ok(rmp::encode::write_array_len(buf, a.len() as u32));
                for x in a {
                    x.write(buf);
                }
            }
            MsgValue::Map(m) => {
                ok(rmp::encode::write_map_len(buf, m.len() as u32));
                for (k, v) in m {
                    k.write(buf);
                    v.write(buf);
                }
            }
            MsgValue::Raw(b) => buf.extend_from_slice(b),
        }
    }

    /// The msgpack encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::new();
        self.write(&mut b);
        b
    }
}

/// Builds a chunk event by event.
#[derive(Debug, Clone, Default)]
pub struct ChunkBuilder {
    buf: Vec<u8>,
    events: usize,
}

impl ChunkBuilder {
    /// An empty chunk.
    pub fn new() -> Self {
        ChunkBuilder::default()
    }

    fn v2_head(&mut self, ts: Timestamp) {
        ok(rmp::encode::write_array_len(&mut self.buf, 2));
        ok(rmp::encode::write_array_len(&mut self.buf, 2));
        ts.write(&mut self.buf);
    }

    /// Appends a v2 event `[[ts, metadata], body]` (metadata and body are
    /// normally maps; anything is encoded as given).
    pub fn push_v2(
        &mut self,
        ts: impl Into<Timestamp>,
        metadata: &Value,
        body: &Value,
    ) -> &mut Self {
        self.v2_head(ts.into());
        write_json(&mut self.buf, metadata);
        write_json(&mut self.buf, body);
        self.events += 1;
        self
    }

    /// Appends a v2 event with an empty metadata map and a pre-encoded
    /// msgpack body (see [`MsgValue`]).
    pub fn push_v2_raw_body(&mut self, ts: impl Into<Timestamp>, body: &[u8]) -> &mut Self {
        self.push_v2_raw(ts, &[0x80], body)
    }

    /// Appends a v2 event with pre-encoded metadata and body.
    pub fn push_v2_raw(
        &mut self,
        ts: impl Into<Timestamp>,
        metadata: &[u8],
        body: &[u8],
    ) -> &mut Self {
        self.v2_head(ts.into());
        self.buf.extend_from_slice(metadata);
        self.buf.extend_from_slice(body);
        self.events += 1;
        self
    }

    /// Appends a legacy event `[ts, body]`.
    pub fn push_legacy(&mut self, ts: impl Into<Timestamp>, body: &Value) -> &mut Self {
        self.push_legacy_raw_body(ts, &json_to_msgpack(body))
    }

    /// Appends a legacy event with a pre-encoded body.
    pub fn push_legacy_raw_body(&mut self, ts: impl Into<Timestamp>, body: &[u8]) -> &mut Self {
        ok(rmp::encode::write_array_len(&mut self.buf, 2));
        ts.into().write(&mut self.buf);
        self.buf.extend_from_slice(body);
        self.events += 1;
        self
    }

    /// Appends a group-start marker `[[EventTime(0xFFFFFFFF, 0), metadata],
    /// attributes]`, as Fluent Bit v5 writes it.
    pub fn push_group_start(&mut self, metadata: &Value, attributes: &Value) -> &mut Self {
        self.push_v2(EventTime::GROUP_START, metadata, attributes)
    }

    /// Appends a group-end marker `[[EventTime(0xFFFFFFFE, 0), {}], {}]`.
    pub fn push_group_end(&mut self) -> &mut Self {
        self.push_v2_raw(EventTime::GROUP_END, &[0x80], &[0x80])
    }

    /// Appends arbitrary bytes (not counted as an event).
    pub fn push_raw(&mut self, bytes: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(bytes);
        self
    }

    /// Empties the chunk, keeping its allocation (to build event after event in one
    /// buffer).
    pub fn clear(&mut self) {
        self.buf.clear();
        self.events = 0;
    }

    /// Events pushed (markers included, raw bytes not).
    pub fn event_count(&self) -> usize {
        self.events
    }

    /// Bytes so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// No bytes yet.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The chunk so far.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    /// A copy of the chunk so far.
    pub fn to_vec(&self) -> Vec<u8> {
        self.buf.clone()
    }

    /// The chunk.
    pub fn finish(self) -> Vec<u8> {
        self.buf
    }
}
