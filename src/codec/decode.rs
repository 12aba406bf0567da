//! Fluent Bit chunk → log events, borrowing the chunk.
//!
//! A chunk is a concatenation of msgpack events in one of two layouts:
//! `[[TIMESTAMP, METADATA], BODY]` (Fluent Bit ≥ 2.1) or `[TIMESTAMP, BODY]` (legacy/forward).
//! TIMESTAMP is EventTime (ext 0, 8 bytes), an integer or a float. Group markers (timestamp
//! -1 / -2) are skipped. A malformed event whose extent is still known is skipped and
//! counted; a chunk whose msgpack itself is broken stops decoding there.

use crate::codec::msgpack::{Header, LexError, Lexer};

/// Seconds and nanoseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct EventTime {
    pub sec: i64,
    pub nsec: u32,
}

/// One log record: its time and where its body map starts in the chunk.
#[derive(Debug, Clone)]
pub struct Event<'a> {
    pub time: EventTime,
    /// The whole chunk, so that the body can be lexed in place.
    pub chunk: &'a [u8],
    /// Position of the body map's header inside `chunk`.
    pub body: usize,
}

/// Why an event was skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    /// Not an array of two items.
    NotAnEvent,
    /// The timestamp is neither EventTime, a non-negative integer nor a float.
    BadTimestamp,
    /// The body is not a map.
    BodyNotAMap,
    /// The msgpack itself is broken: decoding stops here.
    Broken(LexError),
}

/// What the decoder yields for each msgpack object of the chunk.
#[derive(Debug, Clone)]
pub enum Item<'a> {
    Record(Event<'a>),
    GroupMarker,
    Malformed(Malformed),
}

/// Iterates the events of a chunk.
///
/// A record's body is not lexed here: the encoder lexes it anyway and tells where it ended
/// ([`Decoder::body_ends_at`]), so each body is read once. Otherwise the body is skipped
/// when the next item is read; a broken body then ends decoding with
/// [`Malformed::Broken`] right after its record.
pub struct Decoder<'a> {
    lx: Lexer<'a>,
    done: bool,
    /// Start of the last record's body, while its end is not known.
    pending: Option<usize>,
}

impl<'a> Decoder<'a> {
    pub fn new(chunk: &'a [u8]) -> Self {
        Decoder {
            lx: Lexer::new(chunk),
            done: false,
            pending: None,
        }
    }

    /// The last record's body ends at `end` (its encoder read it whole): the next item is
    /// read from there. Ignored unless `end` lies after that body's start.
    pub fn body_ends_at(&mut self, end: usize) {
        if let Some(start) = self.pending {
            if end > start && end <= self.lx.buf().len() {
                self.lx = Lexer::at(self.lx.buf(), end);
                self.pending = None;
            }
        }
    }

    fn event(&mut self) -> Result<Item<'a>, Malformed> {
        let start = self.lx.pos();
        let head = self.lx.read().map_err(Malformed::Broken)?;
        if head != Header::Array(2) {
            // Skip the rest of this object so the next event can still be read.
            self.lx = Lexer::at(self.lx.buf(), start);
            self.lx.skip_value().map_err(Malformed::Broken)?;
            return Err(Malformed::NotAnEvent);
        }
        let first = self.lx.read().map_err(Malformed::Broken)?;
        let time = match first {
            // v2: [TIMESTAMP, METADATA]
            Header::Array(n) => {
                if n >= 1 {
                    let h = self.lx.read().map_err(Malformed::Broken)?;
                    let t = timestamp(&self.lx, h);
                    self.lx.skip_contents(h).map_err(Malformed::Broken)?;
                    for _ in 1..n {
                        self.lx.skip_value().map_err(Malformed::Broken)?;
                    }
                    t
                } else {
                    Stamp::Invalid
                }
            }
            h => {
                // A container where the timestamp should be: skip what it holds too.
                self.lx.skip_contents(h).map_err(Malformed::Broken)?;
                timestamp(&self.lx, h)
            }
        };
        let body_start = self.lx.pos();
        let body_head = self.lx.read().map_err(Malformed::Broken)?;
        if let (Stamp::Time(time), Header::Map(_)) = (&time, body_head) {
            // The body is left to the encoder (or to the next call).
            self.pending = Some(body_start);
            return Ok(Item::Record(Event {
                time: *time,
                chunk: self.lx.buf(),
                body: body_start,
            }));
        }
        self.lx = Lexer::at(self.lx.buf(), body_start);
        self.lx.skip_value().map_err(Malformed::Broken)?;
        match time {
            Stamp::Group => Ok(Item::GroupMarker),
            Stamp::Invalid => Err(Malformed::BadTimestamp),
            Stamp::Time(_) => Err(Malformed::BodyNotAMap),
        }
    }
}

impl<'a> Iterator for Decoder<'a> {
    type Item = Item<'a>;

    fn next(&mut self) -> Option<Item<'a>> {
        if let Some(start) = self.pending.take() {
            self.lx = Lexer::at(self.lx.buf(), start);
            if let Err(e) = self.lx.skip_value() {
                self.done = true;
                return Some(Item::Malformed(Malformed::Broken(e)));
            }
        }
        if self.done || self.lx.is_empty() {
            return None;
        }
        Some(match self.event() {
            Ok(item) => item,
            Err(m) => {
                if matches!(m, Malformed::Broken(_)) {
                    self.done = true;
                }
                Item::Malformed(m)
            }
        })
    }
}

enum Stamp {
    Time(EventTime),
    Group,
    Invalid,
}

fn timestamp(lx: &Lexer<'_>, h: Header) -> Stamp {
    if let Some((sec, nsec)) = lx.event_time(h) {
        // Fluent Bit v5 writes group markers as EventTime with -1 / -2 seconds as u32.
        return if sec == 0xFFFF_FFFF || sec == 0xFFFF_FFFE {
            Stamp::Group
        } else if nsec >= 1_000_000_000 {
            Stamp::Invalid
        } else {
            Stamp::Time(EventTime {
                sec: sec as i64,
                nsec,
            })
        };
    }
    match h {
        Header::Uint(s) if s <= i64::MAX as u64 => Stamp::Time(EventTime {
            sec: s as i64,
            nsec: 0,
        }),
        Header::Int(-1) | Header::Int(-2) => Stamp::Group,
        Header::Int(s) if s >= 0 => Stamp::Time(EventTime { sec: s, nsec: 0 }),
        Header::F64(f) => float_time(f),
        Header::F32(f) => float_time(f as f64),
        _ => Stamp::Invalid,
    }
}

fn float_time(f: f64) -> Stamp {
    if !(0.0..=1.0e15).contains(&f) {
        return Stamp::Invalid;
    }
    let sec = f.trunc();
    let nsec = ((f - sec) * 1e9).round().min(999_999_999.0) as u32;
    Stamp::Time(EventTime {
        sec: sec as i64,
        nsec,
    })
}

/// Counts of one chunk's decode, for logging and the flush outcome.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DecodeStats {
    pub records: usize,
    pub group_markers: usize,
    pub malformed: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev_v2(buf: &mut Vec<u8>, sec: u32, body_kv: (&str, &str)) {
        rmp::encode::write_array_len(buf, 2).unwrap();
        rmp::encode::write_array_len(buf, 2).unwrap();
        rmp::encode::write_ext_meta(buf, 8, 0).unwrap();
        buf.extend_from_slice(&sec.to_be_bytes());
        buf.extend_from_slice(&5u32.to_be_bytes());
        rmp::encode::write_map_len(buf, 0).unwrap();
        rmp::encode::write_map_len(buf, 1).unwrap();
        rmp::encode::write_str(buf, body_kv.0).unwrap();
        rmp::encode::write_str(buf, body_kv.1).unwrap();
    }

    #[test]
    fn decodes_v2_and_skips_bad_events() {
        let mut buf = Vec::new();
        ev_v2(&mut buf, 100, ("a", "b"));
        // not an event: a bare string
        rmp::encode::write_str(&mut buf, "junk").unwrap();
        // negative integer timestamp (not a marker)
        rmp::encode::write_array_len(&mut buf, 2).unwrap();
        rmp::encode::write_sint(&mut buf, -7).unwrap();
        rmp::encode::write_map_len(&mut buf, 0).unwrap();
        // body not a map
        rmp::encode::write_array_len(&mut buf, 2).unwrap();
        rmp::encode::write_uint(&mut buf, 7).unwrap();
        rmp::encode::write_str(&mut buf, "x").unwrap();
        // group marker as integer -1
        rmp::encode::write_array_len(&mut buf, 2).unwrap();
        rmp::encode::write_array_len(&mut buf, 2).unwrap();
        rmp::encode::write_sint(&mut buf, -1).unwrap();
        rmp::encode::write_map_len(&mut buf, 0).unwrap();
        rmp::encode::write_map_len(&mut buf, 0).unwrap();
        ev_v2(&mut buf, 200, ("c", "d"));
        let items: Vec<_> = Decoder::new(&buf).collect();
        assert_eq!(items.len(), 6);
        assert!(matches!(&items[0], Item::Record(e) if e.time == EventTime { sec: 100, nsec: 5 }));
        assert!(matches!(items[1], Item::Malformed(Malformed::NotAnEvent)));
        assert!(matches!(items[2], Item::Malformed(Malformed::BadTimestamp)));
        assert!(matches!(items[3], Item::Malformed(Malformed::BodyNotAMap)));
        assert!(matches!(items[4], Item::GroupMarker));
        assert!(matches!(&items[5], Item::Record(e) if e.time.sec == 200));
    }

    #[test]
    fn truncated_chunk_stops_with_one_malformed() {
        let mut buf = Vec::new();
        ev_v2(&mut buf, 1, ("a", "b"));
        ev_v2(&mut buf, 2, ("a", "b"));
        buf.truncate(buf.len() - 3);
        let items: Vec<_> = Decoder::new(&buf).collect();
        // The second record's body is found broken once it is skipped.
        assert_eq!(items.len(), 3);
        assert!(matches!(items[1], Item::Record(_)));
        assert!(matches!(items[2], Item::Malformed(Malformed::Broken(_))));
    }

    #[test]
    fn float_timestamps_keep_their_fraction() {
        assert!(matches!(
            float_time(12.25),
            Stamp::Time(EventTime {
                sec: 12,
                nsec: 250_000_000
            })
        ));
        assert!(matches!(float_time(f64::NAN), Stamp::Invalid));
        assert!(matches!(float_time(-1.0), Stamp::Invalid));
    }
}
