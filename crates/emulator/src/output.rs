//! The S3-like output folder.
//!
//! Like Firehose delivering to S3 without compression, accepted records are
//! buffered per stream and written as one object when the buffer reaches its
//! size hint or its interval hint has passed since its first record (and on
//! explicit flush or shutdown). An object is the plain concatenation of its
//! records' data and lands at
//!
//! ```text
//! <dir>/<stream>/YYYY/MM/DD/HH/<stream>-<version>-YYYY-MM-DD-HH-MM-SS-<id>
//! ```
//!
//! where the date is the UTC arrival time of the buffer's first record and
//! `<id>` is a random UUID-like string. Objects are written to a hidden
//! temporary file first and renamed into place, so a reader never sees a
//! partial object.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use crate::timeutil::UtcDateTime;

/// Where and how much a stream's buffer holds before it is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BufferLimits {
    /// Size hint in bytes.
    pub size_bytes: u64,
    /// Interval hint.
    pub interval: Duration,
}

/// Which stream a record goes to and how that stream buffers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BufferTarget<'a> {
    /// Stream name.
    pub stream: &'a str,
    /// Delivery stream version (the `1` in `<stream>-1-...`).
    pub version: u64,
    /// Buffering hints in force.
    pub limits: BufferLimits,
    /// Append a `\n` after every record (`AppendDelimiterToRecord`).
    pub delimiter: bool,
}

/// One object written to the output folder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WrittenObject {
    /// Stream the object belongs to.
    pub stream: String,
    /// Full path of the object.
    pub path: PathBuf,
    /// Size in bytes.
    pub bytes: u64,
    /// Number of records in it.
    pub records: u64,
}

#[derive(Debug)]
struct Buffer {
    first_arrival: SystemTime,
    deadline: Instant,
    limits: BufferLimits,
    version: u64,
    data: Vec<u8>,
    records: u64,
}

/// Per-stream buffers writing objects below a root folder.
#[derive(Debug)]
pub struct OutputFolder {
    root: PathBuf,
    buffers: BTreeMap<String, Buffer>,
    rng: fastrand::Rng,
}

impl OutputFolder {
    /// An output folder rooted at `root` (created if missing).
    pub fn new(root: impl Into<PathBuf>) -> io::Result<Self> {
        let root = root.into();
        fs::create_dir_all(&root)?;
        Ok(OutputFolder {
            root,
            buffers: BTreeMap::new(),
            rng: fastrand::Rng::new(),
        })
    }

    /// The root folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Appends one record to the target stream's buffer; writes the buffer
    /// when it reaches its size hint.
    pub fn append(
        &mut self,
        target: &BufferTarget<'_>,
        data: &[u8],
        arrival: SystemTime,
        now: Instant,
    ) -> io::Result<Option<WrittenObject>> {
        let stream = target.stream;
        let buffer = self
            .buffers
            .entry(stream.to_string())
            .or_insert_with(|| Buffer {
                first_arrival: arrival,
                deadline: now + target.limits.interval,
                limits: target.limits,
                version: target.version,
                data: Vec::new(),
                records: 0,
            });
        buffer.data.extend_from_slice(data);
        if target.delimiter {
            buffer.data.push(b'\n');
        }
        buffer.records += 1;
        if buffer.data.len() as u64 >= buffer.limits.size_bytes {
            self.flush_stream(stream)
        } else {
            Ok(None)
        }
    }

    /// `true` when `stream` has a buffer open.
    pub fn has_buffer(&self, stream: &str) -> bool {
        self.buffers.contains_key(stream)
    }

    /// The earliest instant at which a buffer's interval runs out.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.buffers.values().map(|b| b.deadline).min()
    }

    /// Writes every buffer whose interval has run out by `now`.
    pub fn flush_due(&mut self, now: Instant) -> (Vec<WrittenObject>, Vec<io::Error>) {
        let due: Vec<String> = self
            .buffers
            .iter()
            .filter(|(_, b)| b.deadline <= now)
            .map(|(name, _)| name.clone())
            .collect();
        self.flush_streams(due)
    }

    /// Writes every buffer.
    pub fn flush_all(&mut self) -> (Vec<WrittenObject>, Vec<io::Error>) {
        let all: Vec<String> = self.buffers.keys().cloned().collect();
        self.flush_streams(all)
    }

    fn flush_streams(&mut self, names: Vec<String>) -> (Vec<WrittenObject>, Vec<io::Error>) {
        let mut written = Vec::new();
        let mut errors = Vec::new();
        for name in names {
            match self.flush_stream(&name) {
                Ok(Some(o)) => written.push(o),
                Ok(None) => {}
                Err(e) => errors.push(e),
            }
        }
        (written, errors)
    }

    /// Writes `stream`'s buffer now, if it holds anything. On error the
    /// buffer's content is lost (as a failed delivery would be).
    pub fn flush_stream(&mut self, stream: &str) -> io::Result<Option<WrittenObject>> {
        let Some(buffer) = self.buffers.remove(stream) else {
            return Ok(None);
        };
        if buffer.records == 0 {
            return Ok(None);
        }
        let when = UtcDateTime::from_system_time(buffer.first_arrival);
        let dir = self.root.join(stream).join(when.hour_prefix());
        fs::create_dir_all(&dir)?;
        let name = format!(
            "{stream}-{}-{}-{}",
            buffer.version,
            when.dashed(),
            uuid_like(&mut self.rng)
        );
        let path = dir.join(&name);
        let tmp = dir.join(format!(".{name}.tmp"));
        {
            let mut f = fs::File::create(&tmp)?;
            f.write_all(&buffer.data)?;
            f.flush()?;
        }
        fs::rename(&tmp, &path)?;
        Ok(Some(WrittenObject {
            stream: stream.to_string(),
            path,
            bytes: buffer.data.len() as u64,
            records: buffer.records,
        }))
    }

    /// Drops `stream`'s buffer without writing it (the stream was deleted).
    pub fn discard(&mut self, stream: &str) {
        self.buffers.remove(stream);
    }
}

/// A random string shaped like a UUID (8-4-4-4-12 lowercase hex digits).
pub fn uuid_like(rng: &mut fastrand::Rng) -> String {
    let a = rng.u64(..);
    let b = rng.u64(..);
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xffff,
        b >> 48,
        b & 0xffff_ffff_ffff
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "firehose-emulator-unit-{tag}-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn uuid_shape() {
        let mut rng = fastrand::Rng::with_seed(5);
        let id = uuid_like(&mut rng);
        let parts: Vec<usize> = id.split('-').map(str::len).collect();
        assert_eq!(parts, vec![8, 4, 4, 4, 12]);
        assert!(id.chars().all(|c| c == '-' || c.is_ascii_hexdigit()));
    }

    #[test]
    fn size_trigger_and_layout() {
        let root = temp_dir("size");
        let mut out = OutputFolder::new(&root).unwrap();
        let target = BufferTarget {
            stream: "s",
            version: 1,
            limits: BufferLimits {
                size_bytes: 10,
                interval: Duration::from_secs(300),
            },
            delimiter: false,
        };
        // 2024-02-29T12:34:56Z
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_709_210_096);
        let now = Instant::now();
        assert!(out.append(&target, b"hello", t, now).unwrap().is_none());
        let o = out
            .append(&target, b"world!", t, now)
            .unwrap()
            .expect("size reached");
        assert_eq!((o.bytes, o.records), (11, 2));
        assert_eq!(fs::read(&o.path).unwrap(), b"helloworld!");
        let rel = o
            .path
            .strip_prefix(&root)
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        assert!(
            rel.starts_with("s/2024/02/29/12/s-1-2024-02-29-12-34-56-"),
            "{rel}"
        );
        assert!(out.next_deadline().is_none());
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn interval_trigger_and_delimiter() {
        let root = temp_dir("interval");
        let mut out = OutputFolder::new(&root).unwrap();
        let target = BufferTarget {
            stream: "a",
            version: 1,
            limits: BufferLimits {
                size_bytes: 1 << 20,
                interval: Duration::from_millis(100),
            },
            delimiter: true,
        };
        let now = Instant::now();
        out.append(&target, b"x", SystemTime::now(), now).unwrap();
        out.append(&target, b"y", SystemTime::now(), now).unwrap();
        assert_eq!(out.next_deadline(), Some(now + Duration::from_millis(100)));
        let (w, e) = out.flush_due(now);
        assert!(w.is_empty() && e.is_empty());
        let (w, e) = out.flush_due(now + Duration::from_millis(100));
        assert!(e.is_empty());
        assert_eq!(w.len(), 1);
        assert_eq!(fs::read(&w[0].path).unwrap(), b"x\ny\n");
        fs::remove_dir_all(&root).unwrap();
    }
}
