use firehose_fanout::encode::EncodeOptions;
use firehose_fanout::flush::prepare;

#[test]
fn scratch() {
    // legacy event whose timestamp is a map holding a valid event, then a good event
    let mut b = Vec::new();
    // [ {"x": [1, {"evil":"yes"}]}, {"k":"v"} ]
    b.extend_from_slice(&[0x92, 0x81, 0xa1, b'x', 0x92, 0x01, 0x81, 0xa4]);
    b.extend_from_slice(b"evil");
    b.extend_from_slice(&[0xa3]);
    b.extend_from_slice(b"yes");
    b.extend_from_slice(&[0x81, 0xa1, b'k', 0xa1, b'v']);
    let p = prepare(&EncodeOptions::default(), &b);
    eprintln!("{:?} records={}", p.decode, p.records.len());
    for i in 0..p.records.len() {
        eprintln!("{}", String::from_utf8_lossy(p.records.get(i)));
    }
    let mut o = EncodeOptions::default();
    o.time_key = Some("t".into());
    o.time_format = firehose_fanout::timefmt::TimeFormat::parse("%Y\"%n\\").unwrap();
    let b = [0x92, 0x01, 0x81, 0xa1, b'k', 0xa1, b'v'];
    let p = prepare(&o, &b);
    for i in 0..p.records.len() {
        eprintln!("{:?}", String::from_utf8_lossy(p.records.get(i)));
    }
}
