//! The journal on a full disk: writes fail (here: the process's file size limit, which the
//! kernel enforces as a disk that is full at that size), the plugin logs it and goes on,
//! what part of an entry got out is cut off, and every entry written before is still read
//! back whole. Its own test binary: the limit is the whole process's.

use firehose_fanout::delivery::dedupe::ChunkKey;
use firehose_fanout::delivery::journal::{format, Entry, Journal, Options};
use firehose_fanout::telemetry::log::{Level, LogSink, Logger};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Default)]
struct Lines(Mutex<Vec<String>>);

impl LogSink for Lines {
    fn enabled(&self, level: Level) -> bool {
        level <= Level::Info
    }
    fn write(&self, _level: Level, line: &str) {
        self.0.lock().unwrap().push(line.to_string());
    }
}

fn set_file_size_limit(bytes: u64) {
    let lim = libc::rlimit {
        rlim_cur: bytes,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: plain setrlimit(2) on this process with a valid struct.
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_FSIZE, &lim) };
    assert_eq!(rc, 0, "setrlimit");
}

#[test]
fn a_full_disk_is_logged_and_what_was_written_stays_readable() {
    // SAFETY: ignoring SIGXFSZ makes a write over the limit fail with EFBIG instead of
    // killing the process, as a full disk fails with ENOSPC.
    unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
    let dir = std::env::temp_dir().join(format!("ff-journal-full-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let opts = Options {
        folder: dir.clone(),
        instance: "firehose_fanout.0".into(),
        fingerprint: 7,
        max_bytes: 1 << 20,
        sync_interval: Duration::ZERO,
        capacity: 1024,
    };
    let lines = Arc::new(Lines::default());
    let log = Logger::new(lines.clone(), "firehose_fanout.0");
    let (j, _) = Journal::open(opts.clone(), log).expect("opens");
    let entry = |i: u32| Entry::Accepted {
        key: ChunkKey::of("t", &i.to_le_bytes()),
        records: 100,
        ranges: vec![(0, i % 100 + 1)],
    };
    let one = {
        let mut b = Vec::new();
        format::encode(&entry(0), &mut b);
        b.len() as u64
    };
    // Room for the header and 10.5 entries: the 11th is cut short.
    set_file_size_limit(format::HEADER_LEN as u64 + 10 * one + one / 2);
    for i in 0..40 {
        j.append(&entry(i));
    }
    set_file_size_limit(libc::RLIM_INFINITY);
    let logged = lines.0.lock().unwrap().clone();
    assert!(
        logged
            .iter()
            .any(|l| l.contains("write failed") && l.contains("may be sent again after a crash")),
        "{logged:?}"
    );
    // Space again: writing goes on.
    j.append(&entry(99));
    drop(j);
    let bytes = std::fs::read(dir.join("firehose_fanout.0.journal")).unwrap();
    let scan = format::scan(&bytes[format::HEADER_LEN..]);
    assert_eq!(scan.tail, format::Tail::Clean, "no torn entry left behind");
    let mut expect: Vec<Entry> = (0..10).map(entry).collect();
    expect.push(entry(99));
    assert_eq!(scan.entries, expect);
    let _ = std::fs::remove_dir_all(&dir);
}
