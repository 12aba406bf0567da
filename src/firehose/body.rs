//! The PutRecordBatch request body, written from where the log records lie: each Firehose
//! record's bytes are base64-encoded straight from the members (no aggregate copy, no
//! intermediate base64 string, no JSON escaping pass over base64 text).
//!
//! The body is never held whole: [`Body`] writes it in pieces, once to hash it (SigV4 signs
//! the SHA-256 of the payload) and once more as it is sent, so a call costs its size in
//! neither memory nor copies.

use crate::batch::{Frame, Records};
use std::ops::Range;
use std::sync::Arc;

const HEAD: &[u8] = b"{\"DeliveryStreamName\":";
const RECORDS: &[u8] = b",\"Records\":[";
const OPEN: &[u8] = b"{\"Data\":\"";
const CLOSE: &[u8] = b"\"}";
const TAIL: &[u8] = b"]}";

/// Bytes of body written per piece.
pub const PIECE: usize = 64 * 1024;

/// One call's body: the records, the call's batch (positions in the records), its frames.
#[derive(Debug)]
pub struct Body {
    name: Vec<u8>,
    records: Arc<Records>,
    batch: Vec<u32>,
    frames: Vec<(Range<usize>, Option<Vec<u8>>)>,
    len: usize,
}

impl Body {
    /// The awsJson1.1 body of `PutRecordBatch` for `frames` of `batch` to `stream`.
    pub fn new(stream: &str, frames: Vec<Frame>, records: Arc<Records>, batch: Vec<u32>) -> Body {
        // A JSON string always serializes.
        let name = serde_json::to_vec(stream).unwrap_or_else(|_| b"\"\"".to_vec());
        let data: usize = frames
            .iter()
            .map(|f| base64_simd::STANDARD.encoded_length(f.len) + OPEN.len() + CLOSE.len())
            .sum();
        let len = HEAD.len()
            + name.len()
            + RECORDS.len()
            + data
            + frames.len().saturating_sub(1)
            + TAIL.len();
        Body {
            name,
            records,
            batch,
            frames: frames
                .into_iter()
                .map(|f| (f.members, f.compressed))
                .collect(),
            len,
        }
    }

    /// Bytes in the body.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Firehose records in the call.
    pub fn records(&self) -> usize {
        self.frames.len()
    }

    /// A writer from the body's start.
    pub fn writer(self: &Arc<Self>) -> Writer {
        Writer {
            body: Arc::clone(self),
            stage: Stage::Head,
            carry: [0; 3],
            held: 0,
        }
    }

    /// The whole body in one buffer.
    pub fn to_vec(self: &Arc<Self>) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len);
        self.writer().fill(&mut out, usize::MAX);
        out
    }

    /// The lowercase hex SHA-256 of the body, written piece by piece.
    pub fn sha256_hex(self: &Arc<Self>) -> String {
        use sha2::Digest;
        let mut hash = sha2::Sha256::new();
        let mut w = self.writer();
        let mut buf = Vec::with_capacity(PIECE + PIECE / 2);
        while !w.done() {
            buf.clear();
            w.fill(&mut buf, PIECE);
            hash.update(&buf);
        }
        hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Frame `f`'s bytes from its `k`-th member: the compressed buffer (k = 0), or the
    /// longest run of members adjacent in the records, and the member after that run.
    fn run(&self, f: usize, k: usize) -> Option<(&[u8], usize)> {
        let (members, compressed) = &self.frames[f];
        if let Some(c) = compressed {
            return (k == 0).then_some((c.as_slice(), 1));
        }
        let ids = self.batch.get(members.start + k..members.end)?;
        let first = *ids.first()?;
        // A batch is mostly records in order: one run is often the whole aggregate.
        let n = 1 + ids.windows(2).take_while(|w| w[1] == w[0] + 1).count();
        let bytes = self.records.span(first as usize, first as usize + n);
        Some((bytes, k + n))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Head,
    /// Frame `f`, in the run of members from its `k`-th, `off` bytes of that run written.
    Data {
        f: usize,
        k: usize,
        off: usize,
    },
    Tail,
    Done,
}

/// Writes a [`Body`] in pieces, resuming where it stopped.
#[derive(Debug)]
pub struct Writer {
    body: Arc<Body>,
    stage: Stage,
    /// A piece's last one or two bytes, waiting for the next piece's to make three.
    carry: [u8; 3],
    held: usize,
}

impl Writer {
    pub fn done(&self) -> bool {
        self.stage == Stage::Done
    }

    /// Appends the body's next bytes to `out` until it holds about `limit` bytes (a few
    /// more at most) or the body ends.
    pub fn fill(&mut self, out: &mut Vec<u8>, limit: usize) {
        let body = Arc::clone(&self.body);
        while out.len() < limit {
            match self.stage {
                Stage::Head => {
                    out.extend_from_slice(HEAD);
                    out.extend_from_slice(&body.name);
                    out.extend_from_slice(RECORDS);
                    self.stage = if body.frames.is_empty() {
                        Stage::Tail
                    } else {
                        out.extend_from_slice(OPEN);
                        Stage::Data { f: 0, k: 0, off: 0 }
                    };
                }
                Stage::Data { f, k, off } => match body.run(f, k) {
                    Some((bytes, next)) => {
                        // As much as fits `limit` (at least one group of three); the carry
                        // makes any cut point right.
                        let room = limit.saturating_sub(out.len()) / 4 * 3;
                        let take = (bytes.len() - off).min(room.max(3));
                        self.encode(out, &bytes[off..off + take]);
                        self.stage = if off + take == bytes.len() {
                            Stage::Data { f, k: next, off: 0 }
                        } else {
                            Stage::Data {
                                f,
                                k,
                                off: off + take,
                            }
                        };
                    }
                    None => {
                        if self.held > 0 {
                            base64_simd::STANDARD.encode_append(&self.carry[..self.held], out);
                            self.held = 0;
                        }
                        out.extend_from_slice(CLOSE);
                        self.stage = if f + 1 < body.frames.len() {
                            out.push(b',');
                            out.extend_from_slice(OPEN);
                            Stage::Data {
                                f: f + 1,
                                k: 0,
                                off: 0,
                            }
                        } else {
                            Stage::Tail
                        };
                    }
                },
                Stage::Tail => {
                    out.extend_from_slice(TAIL);
                    self.stage = Stage::Done;
                }
                Stage::Done => return,
            }
        }
    }

    /// Appends the base64 of `piece` after what is held: whole 3-byte groups are encoded
    /// (padding only at a frame's end), the last one or two bytes wait for the next piece.
    fn encode(&mut self, out: &mut Vec<u8>, mut piece: &[u8]) {
        let b64 = base64_simd::STANDARD;
        if self.held > 0 {
            let take = (3 - self.held).min(piece.len());
            self.carry[self.held..self.held + take].copy_from_slice(&piece[..take]);
            self.held += take;
            piece = &piece[take..];
            if self.held < 3 {
                return;
            }
            b64.encode_append(self.carry, out);
        }
        let whole = piece.len() - piece.len() % 3;
        b64.encode_append(&piece[..whole], out);
        let rest = &piece[whole..];
        self.carry[..rest.len()].copy_from_slice(rest);
        self.held = rest.len();
    }
}

/// A [`Body`] as an HTTP body: one piece per frame, written as it is sent.
pub struct Stream {
    writer: Writer,
    sent: usize,
}

impl Stream {
    pub fn new(body: &Arc<Body>) -> Stream {
        Stream {
            writer: body.writer(),
            sent: 0,
        }
    }
}

impl http_body::Body for Stream {
    type Data = bytes::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, Self::Error>>> {
        if self.writer.done() {
            return std::task::Poll::Ready(None);
        }
        let mut buf = Vec::with_capacity(PIECE + PIECE / 2);
        self.writer.fill(&mut buf, PIECE);
        self.sent += buf.len();
        std::task::Poll::Ready(Some(Ok(http_body::Frame::data(buf.into()))))
    }

    fn is_end_stream(&self) -> bool {
        self.writer.done()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact((self.writer.body.len - self.sent) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::compress::Compression;
    use crate::batch::{frame, Framing};

    fn records(lines: &[&[u8]]) -> Arc<Records> {
        let mut r = Records::default();
        for l in lines {
            r.buffer().extend_from_slice(l);
            r.commit();
        }
        Arc::new(r)
    }

    fn framed(r: &Arc<Records>, idx: &[u32], framing: Framing) -> (Arc<Body>, Vec<Range<usize>>) {
        let frames = frame(r, idx, framing).unwrap();
        let members = frames.iter().map(|f| f.members.clone()).collect();
        let body = Arc::new(Body::new("logs-0", frames, Arc::clone(r), idx.to_vec()));
        (body, members)
    }

    /// Each `Data` of the body, decoded.
    fn decoded(body: &[u8]) -> (String, Vec<Vec<u8>>) {
        let v: serde_json::Value = serde_json::from_slice(body).expect("valid JSON");
        let name = v["DeliveryStreamName"].as_str().expect("name").to_string();
        let data = v["Records"]
            .as_array()
            .expect("records")
            .iter()
            .map(|r| {
                base64_simd::STANDARD
                    .decode_to_vec(r["Data"].as_str().expect("data"))
                    .expect("base64")
            })
            .collect();
        (name, data)
    }

    /// Each decoded `Data` is its frame's members back to back.
    fn assert_members(r: &Records, idx: &[u32], members: &[Range<usize>], data: &[Vec<u8>]) {
        assert_eq!(data.len(), members.len());
        for (m, d) in members.iter().zip(data) {
            let want: Vec<u8> = idx[m.clone()]
                .iter()
                .flat_map(|&i| r.get(i as usize).to_vec())
                .collect();
            assert_eq!(d, &want);
        }
    }

    fn plain(aggregate_max: Option<usize>) -> Framing {
        Framing {
            aggregate_max,
            max_members: None,
            compression: Compression::None,
        }
    }

    #[test]
    fn aggregates_are_encoded_across_member_boundaries() {
        // Lengths 1..=7 put every carry (0, 1, 2 bytes) at every member boundary.
        let lines: Vec<Vec<u8>> = (1..=7u8)
            .map(|n| (0..n).map(|k| b'a' + k + n).collect())
            .collect();
        let refs: Vec<&[u8]> = lines.iter().map(|l| l.as_slice()).collect();
        let r = records(&refs);
        let idx: Vec<u32> = (0..7).collect();
        for (agg, expected_frames) in [(None, 7), (Some(10), 4), (Some(1000), 1)] {
            let (body, members) = framed(&r, &idx, plain(agg));
            assert_eq!(members.len(), expected_frames);
            let bytes = body.to_vec();
            assert_eq!(bytes.len(), body.len());
            let (name, data) = decoded(&bytes);
            assert_eq!(name, "logs-0");
            assert_eq!(data.len(), members.len());
            assert_members(&r, &idx[..], &members, &data);
        }
    }

    #[test]
    fn pieces_hash_and_stream_are_the_whole_body() {
        let lines: Vec<Vec<u8>> = (0..300u32)
            .map(|n| {
                format!(
                    "{{\"n\":{n},\"pad\":\"{}\"}}\n",
                    "x".repeat(n as usize % 37)
                )
                .into_bytes()
            })
            .collect();
        let refs: Vec<&[u8]> = lines.iter().map(|l| l.as_slice()).collect();
        let r = records(&refs);
        // In order (runs of adjacent records), reversed (no runs), with gaps.
        let orders: [Vec<u32>; 3] = [
            (0..300).collect(),
            (0..300).rev().collect(),
            (0..300).filter(|i| i % 7 != 3).collect(),
        ];
        for (idx, agg) in orders
            .iter()
            .flat_map(|o| [(o, None), (o, Some(700)), (o, Some(100_000))])
        {
            let (body, members) = framed(&r, idx, plain(agg));
            let (_, data) = decoded(&body.to_vec());
            assert_members(&r, &idx[..], &members, &data);
            let whole = body.to_vec();
            // Written a little at a time, resuming where it stopped.
            for limit in [1, 5, 64, 1000] {
                let mut w = body.writer();
                let mut joined = Vec::new();
                while !w.done() {
                    let mut piece = Vec::new();
                    w.fill(&mut piece, limit);
                    joined.extend_from_slice(&piece);
                }
                assert_eq!(joined, whole, "limit {limit}");
            }
            use sha2::Digest;
            let want: String = sha2::Sha256::digest(&whole)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            assert_eq!(body.sha256_hex(), want);
            // As an HTTP body: the same bytes, its exact length announced.
            let mut stream = Stream::new(&body);
            assert_eq!(
                http_body::Body::size_hint(&stream).exact(),
                Some(whole.len() as u64)
            );
            let mut sent = Vec::new();
            let waker = std::task::Waker::noop();
            let mut cx = std::task::Context::from_waker(waker);
            while let std::task::Poll::Ready(Some(Ok(f))) =
                http_body::Body::poll_frame(std::pin::Pin::new(&mut stream), &mut cx)
            {
                sent.extend_from_slice(f.data_ref().expect("data"));
            }
            assert_eq!(sent, whole);
            assert!(http_body::Body::is_end_stream(&stream));
        }
    }

    #[test]
    fn a_subset_in_any_order_and_compressed_frames() {
        let r = records(&[b"{\"a\":1}\n", b"{\"b\":22}\n", b"{\"c\":333}\n", b"x\n"]);
        let idx = [3u32, 1, 0];
        let gz = Framing {
            aggregate_max: Some(1000),
            max_members: None,
            compression: Compression::Gzip { level: 6 },
        };
        let (body, _) = framed(&r, &idx, gz);
        let bytes = body.to_vec();
        assert_eq!(bytes.len(), body.len());
        let (_, data) = decoded(&bytes);
        assert_eq!(data.len(), 1);
        let mut plain = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&data[0][..]), &mut plain)
            .unwrap();
        assert_eq!(plain, b"x\n{\"b\":22}\n{\"a\":1}\n");
    }

    #[test]
    fn the_stream_name_is_a_json_string_and_empty_batches_are_valid() {
        let body = Arc::new(Body::new("we\"ird\\", Vec::new(), records(&[]), Vec::new()));
        let bytes = body.to_vec();
        assert_eq!(
            bytes,
            br#"{"DeliveryStreamName":"we\"ird\\","Records":[]}"#.to_vec()
        );
        assert_eq!(bytes.len(), body.len());
        assert_eq!(decoded(&bytes).0, "we\"ird\\");
    }
}
