//! Unit tests of records, splitting and framing.

use super::*;

fn records(sizes: &[usize]) -> Records {
    let mut r = Records::default();
    for &n in sizes {
        r.buffer().extend(std::iter::repeat_n(b'x', n));
        r.commit();
    }
    r
}

#[test]
fn respects_count_and_byte_limits() {
    let r = records(&vec![10; 1234]);
    let idx: Vec<u32> = (0..1234).collect();
    let b = split(&idx, &r);
    assert_eq!(
        b.iter().map(|s| s.len()).collect::<Vec<_>>(),
        vec![500, 500, 234]
    );

    let big = MAX_RECORD_BYTES;
    let r = records(&[big, big, big, big, big, 7]);
    let idx: Vec<u32> = (0..6).collect();
    let b = split(&idx, &r);
    for s in &b {
        let total: usize = s.iter().map(|&i| r.record_len(i as usize)).sum();
        assert!(total <= MAX_BATCH_BYTES);
    }
    assert_eq!(b.iter().map(|s| s.len()).sum::<usize>(), 6);
    assert_eq!(b.len(), 2);
}

#[test]
fn frames_aggregate_up_to_the_limit_and_bill_by_5kb() {
    use crate::batch::compress::Compression;
    let r = records(&[3000, 3000, 3000, 100, 9000]);
    let idx: Vec<u32> = (0..5).collect();
    let plain = Framing {
        aggregate_max: None,
        max_members: None,
        compression: Compression::None,
    };
    let f = frame(&r, &idx, plain).unwrap();
    assert_eq!(f.len(), 5);
    let agg = Framing {
        aggregate_max: Some(6100),
        max_members: None,
        compression: Compression::None,
    };
    let f = frame(&r, &idx, agg).unwrap();
    let members: Vec<_> = f.iter().map(|f| f.members.clone()).collect();
    // 6,100 rounds down to one 5 KB unit: 3,000 + 3,000 would take two units anyway.
    assert_eq!(members, vec![0..1, 1..2, 2..4, 4..5]);
    assert_eq!(f[2].len, 3100);
    assert_eq!(billed_bytes(100), 5120);
    assert_eq!(billed_bytes(5120), 5120);
    assert_eq!(billed_bytes(5121), 10240);
    let gz = Framing {
        aggregate_max: Some(1 << 20),
        max_members: None,
        compression: Compression::Gzip { level: 6 },
    };
    let f = frame(&r, &idx, gz).unwrap();
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].raw_len, 18100);
    assert!(f[0].len < 200, "x-runs compress well");
}

#[test]
fn split_even_spreads_small_flushes() {
    let r = records(&vec![10; 900]);
    let idx: Vec<u32> = (0..900).collect();
    let b = split_even(&idx, &r, 2, MAX_BATCH_RECORDS, false);
    assert_eq!(
        b.iter().map(|s| s.len()).collect::<Vec<_>>(),
        vec![450, 450]
    );
    let b = split_even(&idx, &r, 3, MAX_BATCH_RECORDS, false);
    assert_eq!(
        b.iter().map(|s| s.len()).collect::<Vec<_>>(),
        vec![300, 300, 300]
    );
    // more parts than records: one record each
    assert_eq!(
        split_even(&idx[..2], &r, 5, MAX_BATCH_RECORDS, false).len(),
        2
    );
    // the limits still decide how many batches at least, and then they are even
    assert_eq!(
        split_even(&idx, &r, 1, MAX_BATCH_RECORDS, false)
            .iter()
            .map(|s| s.len())
            .collect::<Vec<_>>(),
        vec![450, 450]
    );
}

fn billed(r: &Records, parts: &[&[u32]], framing: Framing) -> u64 {
    parts
        .iter()
        .flat_map(|p| frame(r, p, framing).unwrap())
        .map(|f| billed_bytes(f.len))
        .sum()
}

#[test]
fn aggregated_split_cuts_on_billing_units() {
    use crate::batch::compress::Compression;
    let agg = Framing {
        aggregate_max: Some(MAX_RECORD_BYTES),
        max_members: None,
        compression: Compression::None,
    };
    // 2,000 records of 103 bytes (206,000 bytes: 41 units at least) over 4 streams.
    let r = records(&vec![103; 2000]);
    let idx: Vec<u32> = (0..2000).collect();
    let even = split_even(&idx, &r, 4, usize::MAX, true);
    assert_eq!(even.len(), 4);
    assert_eq!(even.iter().map(|p| p.len()).sum::<usize>(), 2000);
    for p in &even[..3] {
        let bytes = p.len() * 103;
        assert!(bytes % 5120 > 5120 - 103, "{bytes} ends just under a unit");
    }
    assert_eq!(billed(&r, &even, agg), 41 * 5120);
    // Equal counts (the unaligned split) round each of the four parts up.
    let counts = split_even(&idx, &r, 4, MAX_BATCH_RECORDS, false);
    assert_eq!(billed(&r, &counts, agg), 44 * 5120);
    // Never a part smaller than a unit: 3 KB of records stay whole.
    let small = records(&vec![100; 30]);
    let idx: Vec<u32> = (0..30).collect();
    assert_eq!(split_even(&idx, &small, 4, usize::MAX, true).len(), 1);
    // 12 KB over 4 streams: two parts.
    let mid = records(&vec![100; 120]);
    let idx: Vec<u32> = (0..120).collect();
    assert_eq!(split_even(&idx, &mid, 4, usize::MAX, true).len(), 2);
}

#[test]
fn full_aggregates_end_on_a_unit() {
    use crate::batch::compress::Compression;
    let r = records(&vec![100; 300]);
    let idx: Vec<u32> = (0..300).collect();
    let f = frame(
        &r,
        &idx,
        Framing {
            aggregate_max: Some(12_000),
            max_members: None,
            compression: Compression::None,
        },
    )
    .unwrap();
    // 12,000 rounds down to 10,240 (2 units): 102 records of 100 bytes each aggregate.
    assert_eq!(f[0].len, 10_200);
    assert_eq!(f.iter().map(|f| f.members.len()).sum::<usize>(), 300);
}

#[test]
fn append_keeps_every_record() {
    let mut a = Records::default();
    a.append(records(&[3, 4]));
    a.append(Records::default());
    a.append(records(&[5]));
    assert_eq!(a.len(), 3);
    assert_eq!(a.get(2), b"xxxxx");
    assert_eq!(a.total_bytes(), 12);
}

#[test]
fn discard_drops_the_open_record() {
    let mut r = Records::default();
    r.buffer().extend_from_slice(b"a\n");
    r.commit();
    r.buffer().extend_from_slice(b"partial");
    r.discard();
    r.buffer().extend_from_slice(b"b\n");
    r.commit();
    assert_eq!(r.get(0), b"a\n");
    assert_eq!(r.get(1), b"b\n");
    assert_eq!(r.total_bytes(), 4);
}

#[test]
fn one_call_never_carries_more_than_500_firehose_records_or_4_mib() {
    use crate::batch::compress::Compression;
    // 1 KiB aggregates of 100-byte records: 10 per frame, 5,000 records = 500 frames.
    let r = records(&vec![100; 6000]);
    let idx: Vec<u32> = (0..6000).collect();
    let small = Framing {
        aggregate_max: Some(1024),
        max_members: None,
        compression: Compression::None,
    };
    let f = frame(&r, &idx, small).unwrap();
    assert_eq!(f.len(), MAX_BATCH_RECORDS);
    let end = f.last().unwrap().members.end;
    assert!(end < idx.len());
    // The rest frames in further calls, every record exactly once.
    let rest = frame(&r, &idx[end..], small).unwrap();
    assert_eq!(rest.last().unwrap().members.end, idx.len() - end);
    // Bytes: 8 records of 900 KiB are two calls of at most 4 MiB.
    let r = records(&[900 * 1024; 8]);
    let idx: Vec<u32> = (0..8).collect();
    let plain = Framing {
        aggregate_max: None,
        max_members: None,
        compression: Compression::None,
    };
    let f = frame(&r, &idx, plain).unwrap();
    let total: usize = f.iter().map(|x| x.len).sum();
    assert!(total <= MAX_BATCH_BYTES, "{total}");
    assert_eq!(f.len(), 4);
}

#[test]
fn an_aggregate_that_compression_makes_too_large_is_cut() {
    use crate::batch::compress::Compression;
    // Incompressible records filling an aggregate to the limit: gzip adds a little.
    let mut r = Records::default();
    let mut rng = fastrand::Rng::with_seed(5);
    for _ in 0..10 {
        r.buffer().extend((0..100 * 1024).map(|_| rng.u8(..)));
        r.commit();
    }
    let idx: Vec<u32> = (0..10).collect();
    let gz = Framing {
        aggregate_max: Some(MAX_RECORD_BYTES),
        max_members: None,
        compression: Compression::Gzip { level: 1 },
    };
    let f = frame(&r, &idx, gz).unwrap();
    assert!(f.len() >= 2);
    for x in &f {
        assert!(x.len <= MAX_RECORD_BYTES, "{}", x.len);
    }
    assert_eq!(f.last().unwrap().members.end, 10);
    // A single record at the compressed limit fits once compressed.
    let max = Compression::Gzip { level: 1 }.max_input();
    let mut one = Records::default();
    one.buffer().extend((0..max).map(|_| rng.u8(..)));
    one.commit();
    let f = frame(&one, &[0], gz).unwrap();
    assert!(f[0].len <= MAX_RECORD_BYTES);
}
