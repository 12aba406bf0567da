//! The on-disk journal (`journal_path`) in its failure cases: a write torn by a crash, a
//! damaged or foreign file, a journal of other settings, a path that cannot be written, a
//! journal in use by another process, and growth past `journal_max_bytes`. In each the
//! plugin goes on (never a crash) and no record is ever claimed that was not accepted
//! (never a loss). A full disk is in `journal_full_disk.rs` (it limits the whole process).

use firehose_fanout::delivery::dedupe::{ChunkKey, Delivered};
use firehose_fanout::delivery::journal::{format, Entry, Journal, JournalError, Options, State};
use firehose_fanout::telemetry::log::{Level, LogSink, Logger};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Default)]
struct Lines(Mutex<Vec<(Level, String)>>);

impl LogSink for Lines {
    fn enabled(&self, level: Level) -> bool {
        level <= Level::Info
    }
    fn write(&self, level: Level, line: &str) {
        self.0.lock().unwrap().push((level, line.to_string()));
    }
}

impl Lines {
    fn any(&self, level: Level, text: &str) -> bool {
        self.0
            .lock()
            .unwrap()
            .iter()
            .any(|(l, s)| *l == level && s.contains(text))
    }
}

fn folder(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ff-journal-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn options(folder: &Path) -> Options {
    Options {
        folder: folder.to_path_buf(),
        instance: "firehose_fanout.0".into(),
        fingerprint: 42,
        max_bytes: 1 << 20,
        sync_interval: Duration::from_secs(1),
        capacity: 1024,
    }
}

fn open(opts: Options) -> (Journal, Vec<(ChunkKey, State)>, Arc<Lines>) {
    let lines = Arc::new(Lines::default());
    let log = Logger::new(lines.clone(), "firehose_fanout.0");
    let (j, known) = Journal::open(opts, log).expect("journal opens");
    (j, known, lines)
}

fn key(i: u32) -> ChunkKey {
    ChunkKey::of("app.log", &i.to_le_bytes())
}

fn accepted(i: u32, records: u32, ranges: &[(u32, u32)]) -> Entry {
    Entry::Accepted {
        key: key(i),
        records,
        ranges: ranges.to_vec(),
    }
}

fn journal_file(folder: &Path) -> PathBuf {
    folder.join("firehose_fanout.0.journal")
}

fn set_aside(folder: &Path, why: &str) -> usize {
    std::fs::read_dir(folder)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .contains(&format!(".journal.{why}-"))
        })
        .count()
}

#[test]
fn what_was_written_is_known_after_a_restart() {
    let dir = folder("restart");
    let (j, known, _) = open(options(&dir));
    assert!(known.is_empty());
    j.append(&accepted(1, 10, &[(0, 4)]));
    j.append(&accepted(1, 10, &[(6, 2)]));
    j.append(&Entry::Done {
        key: key(2),
        records: 3,
    });
    drop(j);
    let (_j, known, lines) = open(options(&dir));
    assert_eq!(known.len(), 2);
    let bits: Vec<bool> = (0..10).map(|i| i < 4 || i == 6 || i == 7).collect();
    assert_eq!(known[0], (key(1), State::from_accepted(&bits)));
    assert_eq!(known[1], (key(2), State::Done { records: 3 }));
    assert!(
        !lines.any(Level::Warn, ""),
        "a clean journal warns of nothing"
    );
    // The retry memory built on it answers the chunk's flush after the restart.
    let d = Delivered::with_journal(16, _j, known);
    assert_eq!(d.take(&key(1), 10), Some(bits));
    assert_eq!(d.take(&key(2), 3), Some(vec![true; 3]));
    assert_eq!(d.take(&key(2), 3), None, "taken once");
}

#[test]
fn a_write_torn_by_a_crash_is_cut_off() {
    let dir = folder("torn");
    let (j, _, _) = open(options(&dir));
    j.append(&accepted(1, 8, &[(0, 8)]));
    drop(j);
    // Half an entry at the end, as a write cut short leaves it.
    let mut half = Vec::new();
    format::encode(&accepted(2, 8, &[(0, 8)]), &mut half);
    half.truncate(half.len() / 2);
    std::fs::OpenOptions::new()
        .append(true)
        .open(journal_file(&dir))
        .unwrap()
        .write_all(&half)
        .unwrap();
    let (j, known, lines) = open(options(&dir));
    assert_eq!(known, vec![(key(1), State::from_accepted(&[true; 8]))]);
    assert!(lines.any(Level::Info, "cut off an incomplete last entry"));
    assert_eq!(
        set_aside(&dir, "corrupt"),
        0,
        "a tear is expected, not set aside"
    );
    // Written anew: the next start reads it clean, with what was appended since.
    j.append(&accepted(3, 1, &[(0, 1)]));
    drop(j);
    let (_j, known, lines) = open(options(&dir));
    assert_eq!(known.len(), 2);
    assert!(!lines.any(Level::Info, "cut off"));
}

#[test]
fn a_damaged_journal_keeps_what_is_before_the_damage_and_is_set_aside() {
    let dir = folder("corrupt");
    let (j, _, _) = open(options(&dir));
    for i in 0..4 {
        j.append(&accepted(i, 4, &[(0, 2)]));
    }
    drop(j);
    let mut bytes = std::fs::read(journal_file(&dir)).unwrap();
    let one = {
        let mut e = Vec::new();
        format::encode(&accepted(0, 4, &[(0, 2)]), &mut e);
        e.len()
    };
    // A flipped bit inside the third entry's ranges.
    bytes[format::HEADER_LEN + 2 * one + one - 12] ^= 0x10;
    std::fs::write(journal_file(&dir), &bytes).unwrap();
    let (_j, known, lines) = open(options(&dir));
    let keys: Vec<ChunkKey> = known.iter().map(|(k, _)| *k).collect();
    assert_eq!(
        keys,
        vec![key(0), key(1)],
        "nothing after the damage is believed"
    );
    assert!(lines.any(Level::Warn, "damaged after 2 good entries"));
    assert_eq!(set_aside(&dir, "corrupt"), 1);
}

#[test]
fn a_foreign_file_is_set_aside_and_a_new_journal_started() {
    let dir = folder("foreign");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(journal_file(&dir), b"[SERVICE]\n    Flush 1\n").unwrap();
    let (j, known, lines) = open(options(&dir));
    assert!(known.is_empty());
    assert!(lines.any(Level::Warn, "not a firehose_fanout journal"));
    assert_eq!(set_aside(&dir, "foreign"), 1);
    j.append(&accepted(1, 1, &[(0, 1)]));
    drop(j);
    assert_eq!(open(options(&dir)).1.len(), 1);
}

#[test]
fn a_journal_of_other_settings_is_not_read() {
    let dir = folder("settings");
    let (j, _, _) = open(options(&dir));
    j.append(&accepted(1, 5, &[(0, 5)]));
    drop(j);
    // Other record settings: record numbers may mean other records.
    let mut other = options(&dir);
    other.fingerprint = 43;
    let (_j, known, lines) = open(other);
    assert!(known.is_empty());
    assert!(lines.any(Level::Info, "written with other record settings"));
}

#[test]
fn a_path_that_cannot_be_written_runs_without_a_journal() {
    let dir = folder("unwritable");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("not-a-folder");
    std::fs::write(&file, b"x").unwrap();
    let lines = Arc::new(Lines::default());
    let log = Logger::new(lines.clone(), "firehose_fanout.0");
    let err = Journal::open(options(&file.join("journal")), log.clone())
        .err()
        .expect("a folder under a file cannot be made");
    assert!(matches!(err, JournalError::Folder { .. }), "{err}");
    assert!(err
        .to_string()
        .contains("set journal_path to a writable folder"));

    // Through the plugin's configuration: an error line, then delivery without it.
    let path = file.join("journal").display().to_string();
    let config = firehose_fanout::config::Config::from_lookup(|k| match k {
        "region" => Some("us-east-1".into()),
        "delivery_streams" => Some("a".into()),
        "journal_path" => Some(path.clone()),
        _ => None,
    })
    .expect("config");
    let d = Delivered::open(&config, "firehose_fanout.0", &log);
    assert!(d.journal().is_none());
    assert!(lines.any(Level::Error, "delivering without it"));
}

#[test]
fn a_read_only_folder_runs_without_a_journal() {
    use std::os::unix::fs::PermissionsExt;
    let dir = folder("read-only");
    std::fs::create_dir_all(&dir).unwrap();
    let writable = |d: &Path| {
        let probe = d.join("probe");
        let ok = std::fs::write(&probe, b"x").is_ok();
        let _ = std::fs::remove_file(probe);
        ok
    };
    // Permissions stop a non-root Fluent Bit; root is stopped by the immutable attribute
    // (as by a read-only mount).
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o555)).unwrap();
    if writable(&dir) {
        let _ = std::process::Command::new("chattr")
            .arg("+i")
            .arg(&dir)
            .status();
    }
    if writable(&dir) {
        eprintln!(
            "cannot make a folder read-only here (root on a filesystem without chattr); skipped"
        );
        return;
    }
    let lines = Arc::new(Lines::default());
    let log = Logger::new(lines, "firehose_fanout.0");
    let result = Journal::open(options(&dir), log).err();
    let _ = std::process::Command::new("chattr")
        .arg("-i")
        .arg(&dir)
        .status();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let err = result.expect("a read-only folder is refused");
    assert!(matches!(err, JournalError::Write { .. }), "{err}");
}

#[test]
fn one_journal_one_process() {
    let dir = folder("in-use");
    let (_first, _, _) = open(options(&dir));
    let lines = Arc::new(Lines::default());
    let err = Journal::open(options(&dir), Logger::new(lines, "x"))
        .err()
        .expect("the second is refused");
    assert!(matches!(err, JournalError::InUse { .. }), "{err}");
    // Another instance name is another journal in the same folder.
    let mut other = options(&dir);
    other.instance = "firehose_fanout.1".into();
    assert!(Journal::open(other, Logger::new(Arc::new(Lines::default()), "y")).is_ok());
}

#[test]
fn growth_past_the_limit_is_compacted_and_nothing_known_is_lost() {
    let dir = folder("compact");
    let mut opts = options(&dir);
    opts.max_bytes = 16 << 10;
    opts.capacity = 8;
    let (j, _, _) = open(opts.clone());
    // 50 chunks, each accepted in 10 calls of one record, then done.
    for c in 0..50 {
        for r in 0..10 {
            j.append(&accepted(c, 10, &[(r, 1)]));
        }
        if c % 2 == 0 {
            j.append(&Entry::Done {
                key: key(c),
                records: 10,
            });
        }
        let len = std::fs::metadata(journal_file(&dir)).unwrap().len();
        assert!(len <= 2 * opts.max_bytes, "{len} bytes");
    }
    // The last chunk half-way.
    j.append(&accepted(50, 10, &[(0, 5)]));
    drop(j);
    let (_j, known, _) = open(opts);
    assert_eq!(known.len(), 8, "the newest chunks are kept");
    let last = known.last().unwrap();
    assert_eq!(last.0, key(50));
    assert_eq!(
        last.1.accepted(),
        (0..10).map(|i| i < 5).collect::<Vec<_>>()
    );
    assert_eq!(known[6], (key(49), State::from_accepted(&[true; 10])));
    assert_eq!(known[5], (key(48), State::Done { records: 10 }));
}
