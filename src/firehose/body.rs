//! The PutRecordBatch request body, written once into a buffer of its exact size: each
//! Firehose record's bytes are base64-encoded straight from where the log records lie (no
//! aggregate copy, no intermediate base64 string, no JSON escaping pass over base64 text).

use crate::batch::{Frame, Records};

const HEAD: &[u8] = b"{\"DeliveryStreamName\":";
const RECORDS: &[u8] = b",\"Records\":[";
const OPEN: &[u8] = b"{\"Data\":\"";
const CLOSE: &[u8] = b"\"}";
const TAIL: &[u8] = b"]}";

/// The awsJson1.1 body of `PutRecordBatch` for `frames` of `batch` to `stream`.
pub fn put_record_batch(
    stream: &str,
    frames: &[Frame],
    records: &Records,
    batch: &[u32],
) -> Vec<u8> {
    // A JSON string always serializes.
    let name = serde_json::to_vec(stream).unwrap_or_else(|_| b"\"\"".to_vec());
    let data: usize = frames
        .iter()
        .map(|f| base64_simd::STANDARD.encoded_length(f.len) + OPEN.len() + CLOSE.len())
        .sum();
    let size = HEAD.len()
        + name.len()
        + RECORDS.len()
        + data
        + frames.len().saturating_sub(1)
        + TAIL.len();
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(HEAD);
    out.extend_from_slice(&name);
    out.extend_from_slice(RECORDS);
    for (n, f) in frames.iter().enumerate() {
        if n > 0 {
            out.push(b',');
        }
        out.extend_from_slice(OPEN);
        encode_pieces(&mut out, f.pieces(records, batch));
        out.extend_from_slice(CLOSE);
    }
    out.extend_from_slice(TAIL);
    debug_assert_eq!(out.len(), size);
    out
}

/// Appends the base64 of the concatenation of `pieces` (padding only at the end): whole
/// 3-byte groups are encoded in place, a piece's last one or two bytes wait for the next.
fn encode_pieces<'a>(out: &mut Vec<u8>, pieces: impl Iterator<Item = &'a [u8]>) {
    let b64 = base64_simd::STANDARD;
    let mut carry = [0u8; 3];
    let mut held = 0;
    for mut piece in pieces {
        if held > 0 {
            let take = (3 - held).min(piece.len());
            carry[held..held + take].copy_from_slice(&piece[..take]);
            held += take;
            piece = &piece[take..];
            if held < 3 {
                continue;
            }
            b64.encode_append(carry, out);
        }
        let whole = piece.len() - piece.len() % 3;
        b64.encode_append(&piece[..whole], out);
        let rest = &piece[whole..];
        carry[..rest.len()].copy_from_slice(rest);
        held = rest.len();
    }
    if held > 0 {
        b64.encode_append(&carry[..held], out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::compress::Compression;
    use crate::batch::{frame, Framing};

    fn records(lines: &[&[u8]]) -> Records {
        let mut r = Records::default();
        for l in lines {
            r.buffer().extend_from_slice(l);
            r.commit();
        }
        r
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
            let framing = Framing {
                aggregate_max: agg,
                max_members: None,
                compression: Compression::None,
            };
            let frames = frame(&r, &idx, framing).unwrap();
            assert_eq!(frames.len(), expected_frames);
            let body = put_record_batch("logs-0", &frames, &r, &idx);
            let (name, data) = decoded(&body);
            assert_eq!(name, "logs-0");
            assert_eq!(data.len(), frames.len());
            for (f, d) in frames.iter().zip(&data) {
                let want: Vec<u8> = idx[f.members.clone()]
                    .iter()
                    .flat_map(|&i| r.get(i as usize).to_vec())
                    .collect();
                assert_eq!(d, &want);
                assert_eq!(d.len(), f.len);
            }
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
        let frames = frame(&r, &idx, gz).unwrap();
        let body = put_record_batch("s", &frames, &r, &idx);
        let (_, data) = decoded(&body);
        assert_eq!(data.len(), 1);
        let mut plain = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&data[0][..]), &mut plain)
            .unwrap();
        assert_eq!(plain, b"x\n{\"b\":22}\n{\"a\":1}\n");
    }

    #[test]
    fn the_stream_name_is_a_json_string_and_empty_batches_are_valid() {
        let r = records(&[]);
        let body = put_record_batch("we\"ird\\", &[], &r, &[]);
        assert_eq!(
            body,
            br#"{"DeliveryStreamName":"we\"ird\\","Records":[]}"#.to_vec()
        );
        assert_eq!(decoded(&body).0, "we\"ird\\");
    }
}
