//! Where records come from (JSON lines, text lines, raw chunk files, a generator, the
//! bundled sample) and how they are packed into Fluent Bit chunks.

use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use flb_host::chunk::{write_json_text, ChunkBuilder, EventTime};

use crate::engine::{Chunk, Queue};
use crate::msgpack;

/// A real Fluent Bit v5.1.1 `tail` chunk: 2,000 Kubernetes-style records, field `seq`.
pub static K8S_SAMPLE: &[u8] = include_bytes!("../../../tests/data/samples/k8s_tail_chunk.msgpack");
/// Key the demo adds to every record so each one can be told apart.
pub const DEMO_ID_KEY: &str = "demo_id";

/// Input file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// By extension (.json/.jsonl/.ndjson, .msgpack/.chunk, .log/.txt), else by content.
    Auto,
    /// One JSON object per line.
    Json,
    /// Plain text lines, each shipped as {"log": "<line>"}.
    Text,
    /// Raw chunks: msgpack events as Fluent Bit passes them to a flush.
    Chunk,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Auto => "auto",
            Format::Json => "JSON lines",
            Format::Text => "text lines",
            Format::Chunk => "raw chunks",
        })
    }
}

/// One source of records.
#[derive(Debug, Clone)]
pub enum Input {
    /// A file (`-` is standard input).
    File { path: PathBuf, format: Format },
    /// `count` synthetic records of about `record_size` bytes of JSON each.
    Generate { count: u64, record_size: usize },
    /// The bundled Kubernetes sample, repeated up to `records` records, each with a
    /// distinct `demo_id`.
    Sample { records: u64 },
}

impl Input {
    /// Checks that a file input can be opened (so a missing file fails before anything
    /// starts).
    pub fn check(&self) -> Result<()> {
        if let Input::File { path, .. } = self {
            if path.as_os_str() != "-" {
                File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
            }
        }
        Ok(())
    }

    pub fn describe(&self) -> String {
        match self {
            Input::File { path, format } if path.as_os_str() == "-" => {
                format!("standard input ({format})")
            }
            Input::File { path, format } => format!("{} ({format})", path.display()),
            Input::Generate { count, record_size } => format!(
                "{} generated records of ~{record_size} bytes",
                crate::units::int(*count)
            ),
            Input::Sample { records } => format!(
                "{} records of a real Fluent Bit tail chunk (2,000 Kubernetes records, replayed with distinct ids)",
                crate::units::int(*records)
            ),
        }
    }
}

/// How records are packed into chunks.
#[derive(Debug, Clone, Copy)]
pub struct ChunkLimits {
    /// A chunk is handed over before it would grow past this many bytes.
    pub max_bytes: usize,
    /// ... or when it holds this many records.
    pub max_records: u64,
    /// ... or when its first record is this old (Fluent Bit's `Flush` interval).
    pub flush_interval: Duration,
}

/// What the producer read.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProduceStats {
    /// Records (group markers not counted).
    pub records: u64,
    /// Chunks handed over.
    pub chunks: u64,
    /// Bytes of those chunks (msgpack).
    pub chunk_bytes: u64,
    /// CPU time the producer thread used (reading, parsing, packing).
    pub cpu: Duration,
}

/// Packs events into chunks and hands them to the queue, at an optional rate.
struct Producer<'a> {
    queue: &'a Queue,
    limits: ChunkLimits,
    chunk: Vec<u8>,
    chunk_records: u64,
    chunk_started: Instant,
    rate: Option<(f64, Instant)>,
    paced: u64,
    stats: ProduceStats,
}

impl<'a> Producer<'a> {
    /// Hands the current chunk over. `false` when the run was stopped.
    fn emit(&mut self) -> bool {
        if self.chunk.is_empty() {
            return !self.queue.is_stopped();
        }
        let data = std::mem::take(&mut self.chunk);
        self.stats.chunks += 1;
        self.stats.chunk_bytes += data.len() as u64;
        let records = std::mem::take(&mut self.chunk_records);
        self.queue.push(Chunk { data, records })
    }

    /// Waits until the rate allows one more record; hands over a chunk that gets old
    /// meanwhile.
    fn pace(&mut self) -> bool {
        let Some((rate, start)) = self.rate else {
            return true;
        };
        let due = start + Duration::from_secs_f64(self.paced as f64 / rate);
        self.paced += 1;
        loop {
            let now = Instant::now();
            // A little ahead is fine: sleeping per record would cost more than it paces.
            if due <= now + Duration::from_millis(2) {
                return true;
            }
            if self.queue.is_stopped() {
                return false;
            }
            let mut wait = (due - now).min(Duration::from_millis(100));
            if !self.chunk.is_empty() {
                let flush_at = self.chunk_started + self.limits.flush_interval;
                if flush_at <= now {
                    if !self.emit() {
                        return false;
                    }
                } else {
                    wait = wait.min(flush_at - now);
                }
            }
            std::thread::sleep(wait);
        }
    }

    /// Adds one encoded event. `false` when the run was stopped.
    fn event(&mut self, event: &[u8], is_record: bool) -> bool {
        if is_record && !self.pace() {
            return false;
        }
        let full = self.chunk.len() + event.len() > self.limits.max_bytes
            || (is_record && self.chunk_records >= self.limits.max_records);
        if !self.chunk.is_empty() && full && !self.emit() {
            return false;
        }
        if self.chunk.is_empty() {
            self.chunk_started = Instant::now();
        }
        self.chunk.extend_from_slice(event);
        if is_record {
            self.chunk_records += 1;
            self.stats.records += 1;
        }
        if self.chunk_records >= self.limits.max_records
            || self.chunk_started.elapsed() >= self.limits.flush_interval
        {
            return self.emit();
        }
        true
    }

    /// A whole chunk as it is (after the one being packed).
    fn whole(&mut self, data: Vec<u8>, records: u64) -> bool {
        if !self.emit() {
            return false;
        }
        self.stats.records += records;
        self.chunk = data;
        self.chunk_records = records;
        self.emit()
    }
}

/// Reads every input in order, packs the records into chunks and pushes them to
/// `queue`; marks the queue finished at the end (also on error).
pub fn produce(
    inputs: &[Input],
    limits: ChunkLimits,
    rate: Option<f64>,
    queue: &Queue,
) -> Result<ProduceStats> {
    let mut p = Producer {
        queue,
        limits,
        chunk: Vec::with_capacity(limits.max_bytes.min(4 << 20)),
        chunk_records: 0,
        chunk_started: Instant::now(),
        rate: rate.map(|r| (r, Instant::now())),
        paced: 0,
        stats: ProduceStats::default(),
    };
    let result = (|| {
        for input in inputs {
            let go_on = match input {
                Input::File { path, format } => read_file(&mut p, path, *format)?,
                Input::Generate { count, record_size } => generate(&mut p, *count, *record_size),
                Input::Sample { records } => sample(&mut p, *records)?,
            };
            if !go_on {
                return Ok(());
            }
        }
        p.emit();
        Ok(())
    })();
    queue.finish_producing();
    p.stats.cpu = crate::sys::this_thread_cpu();
    result.map(|()| p.stats)
}

fn open(path: &Path) -> Result<Box<dyn Read>> {
    if path.as_os_str() == "-" {
        return Ok(Box::new(std::io::stdin()));
    }
    let f = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    Ok(Box::new(f))
}

fn format_by_extension(path: &Path) -> Option<Format> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    match ext.as_str() {
        "json" | "jsonl" | "ndjson" => Some(Format::Json),
        "msgpack" | "mpk" | "chunk" | "flb" => Some(Format::Chunk),
        "log" | "txt" | "text" => Some(Format::Text),
        _ => None,
    }
}

/// Guesses from the first bytes: a chunk starts with a 2-element array, JSON lines with
/// `{`, anything else is text.
fn format_by_content(head: &[u8]) -> Format {
    match head.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(0x92) => Format::Chunk,
        Some(b'{') => Format::Json,
        _ => Format::Text,
    }
}

fn read_file(p: &mut Producer<'_>, path: &Path, format: Format) -> Result<bool> {
    let mut reader = BufReader::with_capacity(256 * 1024, open(path)?);
    let format = match format {
        Format::Auto => match format_by_extension(path) {
            Some(f) => f,
            None => {
                let head = reader
                    .fill_buf()
                    .with_context(|| format!("cannot read {}", path.display()))?;
                format_by_content(head)
            }
        },
        f => f,
    };
    match format {
        Format::Chunk => {
            let mut data = Vec::new();
            reader
                .read_to_end(&mut data)
                .with_context(|| format!("cannot read {}", path.display()))?;
            read_chunk(p, path, data)
        }
        Format::Json | Format::Text | Format::Auto => {
            read_lines(p, path, reader, format == Format::Json)
        }
    }
}

fn read_chunk(p: &mut Producer<'_>, path: &Path, data: Vec<u8>) -> Result<bool> {
    let events = msgpack::events(&data).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    if events.is_empty() {
        bail!(
            "{}: not a Fluent Bit chunk: the file is empty",
            path.display()
        );
    }
    let records = events.iter().filter(|e| !e.is_marker).count() as u64;
    if p.rate.is_none() && data.len() <= p.limits.max_bytes && records <= p.limits.max_records {
        return Ok(p.whole(data, records));
    }
    for e in &events {
        if !p.event(&data[e.start..e.end], !e.is_marker) {
            return Ok(false);
        }
    }
    Ok(true)
}

fn read_lines(
    p: &mut Producer<'_>,
    path: &Path,
    mut reader: impl BufRead,
    json: bool,
) -> Result<bool> {
    let mut line = Vec::with_capacity(4096);
    let mut body = Vec::with_capacity(4096);
    let mut event = ChunkBuilder::new();
    let mut number = 0u64;
    loop {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .with_context(|| format!("cannot read {}", path.display()))?;
        if n == 0 {
            return Ok(true);
        }
        number += 1;
        while matches!(line.last(), Some(b'\n' | b'\r')) {
            line.pop();
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        body.clear();
        if json {
            json_body(&line, &mut body).map_err(|e| anyhow!("{}:{number}: {e}", path.display()))?;
        } else {
            msgpack::write_map_len(&mut body, 1);
            msgpack::write_str_bytes(&mut body, b"log");
            msgpack::write_str_bytes(&mut body, &line);
        }
        event.clear();
        event.push_v2_raw_body(EventTime::now(), &body);
        if !p.event(event.as_bytes(), true) {
            return Ok(false);
        }
    }
}

/// A JSON object, straight to msgpack, keys in their order.
pub fn json_body(line: &[u8], out: &mut Vec<u8>) -> Result<()> {
    if line.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        bail!("not a JSON object (use --format text to ship lines as {{\"log\": line}})");
    }
    write_json_text(out, line).map_err(|e| anyhow!("invalid JSON: {e}"))
}

/// Filler text for generated records (printable, no JSON escapes).
const FILLER: &[u8] =
    b"Lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor \
incididunt ut labore et dolore magna aliqua 0123456789 GET /api/v1/items?page=7 200 12ms \
user=alice region=us-east-1 pod=web-7f9c6d5b8-x2k4q container=app level=info ";

/// JSON overhead of a generated record around its filler: `{"seq":N,"log":"..."}\n`.
fn generated_overhead(seq: u64) -> usize {
    18 + seq.to_string().len()
}

fn generate(p: &mut Producer<'_>, count: u64, record_size: usize) -> bool {
    let mut body = Vec::with_capacity(record_size + 64);
    let mut event = ChunkBuilder::new();
    let mut filler = Vec::with_capacity(record_size);
    for seq in 0..count {
        body.clear();
        filler.clear();
        let len = record_size.saturating_sub(generated_overhead(seq));
        let start = (seq as usize).wrapping_mul(7) % FILLER.len();
        filler.extend(FILLER.iter().cycle().skip(start).take(len));
        msgpack::write_map_len(&mut body, 2);
        msgpack::write_str_bytes(&mut body, b"seq");
        msgpack::write_uint(&mut body, seq);
        msgpack::write_str_bytes(&mut body, b"log");
        msgpack::write_str_bytes(&mut body, &filler);
        event.clear();
        event.push_v2_raw_body(EventTime::now(), &body);
        if !p.event(event.as_bytes(), true) {
            return false;
        }
    }
    true
}

fn sample(p: &mut Producer<'_>, records: u64) -> Result<bool> {
    let events: Vec<msgpack::Event> = msgpack::events(K8S_SAMPLE)
        .map_err(|e| anyhow!("the bundled sample: {e}"))?
        .into_iter()
        .filter(|e| !e.is_marker)
        .collect();
    if events.is_empty() {
        bail!("the bundled sample has no records");
    }
    let mut event = Vec::with_capacity(4096);
    for id in 0..records {
        let e = &events[(id % events.len() as u64) as usize];
        event.clear();
        msgpack::append_to_body(K8S_SAMPLE, e, DEMO_ID_KEY, id, &mut event)
            .ok_or_else(|| anyhow!("the bundled sample has a record that is not a map"))?;
        if !p.event(&event, true) {
            return Ok(false);
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Queue;

    fn limits() -> ChunkLimits {
        ChunkLimits {
            max_bytes: 2_048_000,
            max_records: 2000,
            flush_interval: Duration::from_secs(60),
        }
    }

    fn drain(q: &Queue) -> Vec<Chunk> {
        let mut out = Vec::new();
        while let Some(c) = q.try_take_fresh() {
            out.push(c);
        }
        out
    }

    #[test]
    fn json_keeps_key_order_and_types() {
        let mut out = Vec::new();
        json_body(
            br#"{"z": 1, "a": [true, null, -2, 1.5, "s"], "m": {"k": "v"}}"#,
            &mut out,
        )
        .unwrap();
        let mut expect = Vec::new();
        rmp::encode::write_map_len(&mut expect, 3).unwrap();
        rmp::encode::write_str(&mut expect, "z").unwrap();
        rmp::encode::write_uint(&mut expect, 1).unwrap();
        rmp::encode::write_str(&mut expect, "a").unwrap();
        rmp::encode::write_array_len(&mut expect, 5).unwrap();
        rmp::encode::write_bool(&mut expect, true).unwrap();
        rmp::encode::write_nil(&mut expect).unwrap();
        rmp::encode::write_sint(&mut expect, -2).unwrap();
        rmp::encode::write_f64(&mut expect, 1.5).unwrap();
        rmp::encode::write_str(&mut expect, "s").unwrap();
        rmp::encode::write_str(&mut expect, "m").unwrap();
        rmp::encode::write_map_len(&mut expect, 1).unwrap();
        rmp::encode::write_str(&mut expect, "k").unwrap();
        rmp::encode::write_str(&mut expect, "v").unwrap();
        assert_eq!(out, expect);
        assert!(json_body(b"[1]", &mut Vec::new()).is_err());
        assert!(json_body(b"{\"a\":", &mut Vec::new()).is_err());
        assert!(json_body(b"{} {}", &mut Vec::new()).is_err());
    }

    #[test]
    fn packs_by_record_count_and_size() {
        let q = Queue::new(1000);
        let stats = produce(
            &[Input::Generate {
                count: 4500,
                record_size: 100,
            }],
            limits(),
            None,
            &q,
        )
        .unwrap();
        assert_eq!(stats.records, 4500);
        let chunks = drain(&q);
        let counts: Vec<u64> = chunks.iter().map(|c| c.records).collect();
        assert_eq!(counts, vec![2000, 2000, 500]);
        for c in &chunks {
            let ev = msgpack::events(&c.data).unwrap();
            assert_eq!(ev.len() as u64, c.records);
        }

        let q = Queue::new(1000);
        let small = ChunkLimits {
            max_bytes: 10_000,
            ..limits()
        };
        produce(
            &[Input::Generate {
                count: 1000,
                record_size: 1000,
            }],
            small,
            None,
            &q,
        )
        .unwrap();
        let chunks = drain(&q);
        assert!(chunks.iter().all(|c| c.data.len() <= 10_000));
        assert_eq!(chunks.iter().map(|c| c.records).sum::<u64>(), 1000);
    }

    #[test]
    fn generated_size_is_close() {
        let q = Queue::new(10);
        produce(
            &[Input::Generate {
                count: 1,
                record_size: 300,
            }],
            limits(),
            None,
            &q,
        )
        .unwrap();
        let chunk = drain(&q).remove(0);
        let ev = msgpack::events(&chunk.data).unwrap();
        let body = &chunk.data[ev[0].body_start..ev[0].end];
        // {"seq":0,"log":"..."}\n as the plugin writes it
        // fixmap, "seq", 0, "log", str16 header: 13 bytes around the filler
        let filler_len = body.len() - 13;
        assert_eq!(18 + 1 + filler_len, 300);
    }

    #[test]
    fn sample_ids() {
        let q = Queue::new(10);
        let stats = produce(&[Input::Sample { records: 2500 }], limits(), None, &q).unwrap();
        assert_eq!(stats.records, 2500);
        let chunks = drain(&q);
        assert_eq!(chunks.iter().map(|c| c.records).sum::<u64>(), 2500);
    }
}
