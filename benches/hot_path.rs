//! The core path without the network: decode + encode (+ aggregation framing) of a chunk,
//! and the whole chunk → PutRecordBatch requests path (framing, the body written once to
//! hash it and once as it is sent), for ~100-byte log lines and ~1 KB Kubernetes-style
//! records (nested `kubernetes` map).
//! `cargo bench --bench hot_path`; criterion prints MB/s (of chunk bytes) per benchmark.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use firehose_fanout::batch::compress::Compression;
use firehose_fanout::batch::{self, Framing, MAX_RECORD_BYTES};
use firehose_fanout::codec::encode::EncodeOptions;
use firehose_fanout::delivery::prepare;
use firehose_fanout::firehose::body::{Body, PIECE};
use std::hint::black_box;
use std::sync::Arc;

fn ext_time(buf: &mut Vec<u8>, sec: u32) {
    rmp::encode::write_ext_meta(buf, 8, 0).unwrap();
    buf.extend_from_slice(&sec.to_be_bytes());
    buf.extend_from_slice(&123_456_789u32.to_be_bytes());
}

/// `n` events of ~100-byte lines: {"log": "...", "stream": "stdout"}.
fn small_lines(n: usize) -> Vec<u8> {
    let mut b = Vec::new();
    for i in 0..n {
        rmp::encode::write_array_len(&mut b, 2).unwrap();
        rmp::encode::write_array_len(&mut b, 2).unwrap();
        // a busy service: a thousand lines a second
        ext_time(&mut b, 1_764_000_000 + (i / 1000) as u32);
        rmp::encode::write_map_len(&mut b, 0).unwrap();
        rmp::encode::write_map_len(&mut b, 2).unwrap();
        rmp::encode::write_str(&mut b, "log").unwrap();
        rmp::encode::write_str(
            &mut b,
            &format!("2026-11-28T00:00:00.000Z INFO request {i:08} served in 12ms path=/api/v1/items status=200"),
        )
        .unwrap();
        rmp::encode::write_str(&mut b, "stream").unwrap();
        rmp::encode::write_str(&mut b, "stdout").unwrap();
    }
    b
}

/// The real Kubernetes chunk captured from Fluent Bit (2,000 records of ~850 bytes).
fn k8s_records() -> Vec<u8> {
    std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/samples/k8s_tail_chunk.msgpack"
    ))
    .expect("tests/data/samples/k8s_tail_chunk.msgpack")
}

fn bench(c: &mut Criterion) {
    let inputs = [
        ("small_100B", small_lines(20_000)),
        ("k8s_1KB", k8s_records()),
    ];
    let time_key = EncodeOptions {
        time_key: Some("@timestamp".into()),
        ..Default::default()
    };
    let mut g = c.benchmark_group("decode_encode");
    for (name, chunk) in &inputs {
        g.throughput(Throughput::Bytes(chunk.len() as u64));
        g.bench_with_input(BenchmarkId::new("json", name), chunk, |b, chunk| {
            b.iter(|| black_box(prepare(&EncodeOptions::default(), black_box(chunk))))
        });
        g.bench_with_input(
            BenchmarkId::new("json+time_key", name),
            chunk,
            |b, chunk| b.iter(|| black_box(prepare(&time_key, black_box(chunk)))),
        );
    }
    g.finish();

    let mut g = c.benchmark_group("decode_encode_batch");
    for (name, chunk) in &inputs {
        g.throughput(Throughput::Bytes(chunk.len() as u64));
        for (label, framing) in [
            (
                "single",
                Framing {
                    aggregate_max: None,
                    max_members: None,
                    compression: Compression::None,
                },
            ),
            (
                "aggregated",
                Framing {
                    aggregate_max: Some(MAX_RECORD_BYTES),
                    max_members: None,
                    compression: Compression::None,
                },
            ),
            (
                "aggregated+zstd",
                Framing {
                    aggregate_max: Some(MAX_RECORD_BYTES),
                    max_members: None,
                    compression: Compression::Zstd { level: 3 },
                },
            ),
        ] {
            g.bench_with_input(BenchmarkId::new(label, name), chunk, |b, chunk| {
                b.iter(|| {
                    let p = prepare(&EncodeOptions::default(), chunk);
                    let idx: Vec<u32> = (0..p.records.len() as u32).collect();
                    let max = if framing.aggregate_max.is_some() {
                        usize::MAX
                    } else {
                        batch::MAX_BATCH_RECORDS
                    };
                    let mut frames = 0;
                    for b in batch::split_limited(&idx, &p.records, max) {
                        frames += batch::frame(&p.records, b, framing).unwrap().len();
                    }
                    black_box(frames)
                })
            });
        }
    }
    g.finish();

    // What the plugin's threads do per chunk in the default configuration, the network
    // aside: records, 4 calls (one per stream), each framed into aggregates, its body hashed
    // for SigV4 and written out in pieces as it would be sent.
    let mut g = c.benchmark_group("chunk_to_requests");
    for (name, chunk) in &inputs {
        g.throughput(Throughput::Bytes(chunk.len() as u64));
        g.bench_with_input(BenchmarkId::new("default", name), chunk, |b, chunk| {
            let framing = Framing {
                aggregate_max: Some(MAX_RECORD_BYTES),
                max_members: None,
                compression: Compression::None,
            };
            b.iter(|| {
                let p = prepare(&EncodeOptions::default(), chunk);
                let records = Arc::new(p.records);
                let idx: Vec<u32> = (0..records.len() as u32).collect();
                let mut sent = 0;
                for part in batch::split_even(&idx, &records, 4, usize::MAX, true) {
                    let mut rest: &[u32] = part;
                    while !rest.is_empty() {
                        let frames = batch::frame(&records, rest, framing).unwrap();
                        let end = frames.last().map_or(rest.len(), |f| f.members.end);
                        let body = Arc::new(Body::new(
                            "eng-0",
                            frames,
                            Arc::clone(&records),
                            rest[..end].to_vec(),
                        ));
                        black_box(body.sha256_hex());
                        let mut w = body.writer();
                        let mut piece = Vec::with_capacity(2 * PIECE);
                        while !w.done() {
                            piece.clear();
                            w.fill(&mut piece, PIECE);
                            sent += piece.len();
                        }
                        rest = &rest[end..];
                    }
                }
                black_box(sent)
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
