//! The on-disk journal (`journal_path`): what Firehose accepted of each chunk, written as
//! calls succeed, so that a chunk Fluent Bit flushes again after the process died (kill -9,
//! OOM kill) sends only what is missing.
//!
//! Every entry is written (one `write`) as soon as its call is accepted, so a process crash
//! loses nothing written; `fdatasync` runs every `journal_sync_interval` (group commit), so
//! a machine crash loses at most that much, and a lost entry only means records sent twice,
//! never a record skipped. The file is compacted (folded into one entry per chunk, the
//! `retry_memory_chunks` newest) when it passes `journal_max_bytes`, and at every start. A
//! file that is not a journal, or is damaged, is set aside with a warning; a journal that
//! cannot be written is given up with a warning, never a failed flush.

mod fold;
pub mod format;

pub use fold::{fold, State};
pub use format::Entry;

use crate::delivery::dedupe::ChunkKey;
use crate::telemetry::log::{Level, Logger};
use format::{Header, Tail};
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A journal file no larger than this is read at start; a larger one is set aside.
const MAX_READ: u64 = 1 << 30;

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("journal_path {path}: cannot create the folder ({source}); set journal_path to a writable folder")]
    Folder { path: PathBuf, source: io::Error },
    #[error("journal {path}: cannot be written ({source}); set journal_path to a writable folder")]
    Write { path: PathBuf, source: io::Error },
    #[error(
        "journal {path} is in use by another process; give each Fluent Bit its own journal_path"
    )]
    InUse { path: PathBuf },
}

/// Where and how the journal is kept.
#[derive(Debug, Clone)]
pub struct Options {
    pub folder: PathBuf,
    /// The output instance's name: one journal per `[OUTPUT]`.
    pub instance: String,
    /// Of the settings that decide how a chunk becomes records (see `fingerprint`).
    pub fingerprint: u64,
    pub max_bytes: u64,
    /// `Duration::ZERO`: `fdatasync` after every entry.
    pub sync_interval: Duration,
    /// Chunks kept when compacting.
    pub capacity: usize,
}

pub struct Journal {
    path: PathBuf,
    opts: Options,
    log: Logger,
    w: Mutex<Writer>,
    /// Held for the journal's life: the lock that keeps two processes out of one file.
    _lock: File,
}

struct Writer {
    file: File,
    len: u64,
    dirty: bool,
    buf: Vec<u8>,
    /// Compact when the file passes this (pushed on after a failed compaction).
    compact_at: u64,
}

impl Journal {
    /// Opens (or creates) the instance's journal and reads what it knows, compacted.
    pub fn open(
        opts: Options,
        log: Logger,
    ) -> Result<(Journal, Vec<(ChunkKey, State)>), JournalError> {
        fs::create_dir_all(&opts.folder).map_err(|source| JournalError::Folder {
            path: opts.folder.clone(),
            source,
        })?;
        let stem: String = opts
            .instance
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let path = opts.folder.join(format!("{stem}.journal"));
        let write_err = |source| JournalError::Write {
            path: path.clone(),
            source,
        };
        let lock_path = opts.folder.join(format!("{stem}.journal.lock"));
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(write_err)?;
        // A lock just let go can still be held for an instant by a copy of its descriptor
        // in a child being forked (until its exec closes it): a hot reload, or another
        // thread starting a process, must not cost the journal. Held for a second: in use.
        let mut tries = 0;
        loop {
            match lock.try_lock() {
                Ok(()) => break,
                Err(TryLockError::WouldBlock) if tries < 20 => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                Err(TryLockError::WouldBlock) => return Err(JournalError::InUse { path }),
                Err(TryLockError::Error(e)) => return Err(write_err(e)),
            }
        }
        let known = read_existing(&path, &opts, &log);
        let state = fold(known, opts.capacity);
        let entries: Vec<Entry> = state.iter().map(|(k, s)| s.entry(*k)).collect();
        let file = rewrite(&path, opts.fingerprint, &entries).map_err(write_err)?;
        let len = file.metadata().map(|m| m.len()).map_err(write_err)?;
        let journal = Journal {
            w: Mutex::new(Writer {
                file,
                len,
                dirty: false,
                buf: Vec::with_capacity(256),
                compact_at: opts.max_bytes,
            }),
            path,
            opts,
            log,
            _lock: lock,
        };
        Ok((journal, state))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes one entry at once (so a process crash keeps it); compacts when the file is
    /// over `journal_max_bytes`. A failed write is logged and cut off; delivery goes on.
    pub fn append(&self, entry: &Entry) {
        let mut w = self.w.lock().unwrap_or_else(|p| p.into_inner());
        let w = &mut *w;
        w.buf.clear();
        format::encode(entry, &mut w.buf);
        match w.file.write_all(&w.buf) {
            Ok(()) => {
                w.len += w.buf.len() as u64;
                w.dirty = true;
                if self.opts.sync_interval.is_zero() {
                    self.sync_locked(w);
                }
            }
            Err(e) => {
                // Cut off what part of the entry got out, so later entries stay readable.
                let _ = w.file.set_len(w.len);
                self.log.limited(
                    "journal-write",
                    Level::Error,
                    format_args!(
                        "journal {}: write failed ({e}): records accepted now may be sent again after a crash",
                        self.path.display()
                    ),
                );
            }
        }
        if w.len > w.compact_at {
            self.compact(w);
        }
    }

    /// `fdatasync` if anything was written since the last one, without holding up the
    /// writers meanwhile (the sync runs on a second handle of the same file).
    pub fn sync(&self) {
        let handle = {
            let mut w = self.w.lock().unwrap_or_else(|p| p.into_inner());
            if !w.dirty {
                return;
            }
            w.dirty = false;
            w.file.try_clone()
        };
        if let Err(e) = handle.and_then(|f| f.sync_data()) {
            self.w.lock().unwrap_or_else(|p| p.into_inner()).dirty = true;
            self.sync_failed(&e);
        }
    }

    fn sync_locked(&self, w: &mut Writer) {
        match w.file.sync_data() {
            Ok(()) => w.dirty = false,
            Err(e) => self.sync_failed(&e),
        }
    }

    fn sync_failed(&self, e: &io::Error) {
        self.log.limited(
            "journal-sync",
            Level::Error,
            format_args!("journal {}: fdatasync failed ({e})", self.path.display()),
        );
    }

    /// Folds the file into one entry per chunk and writes it anew.
    fn compact(&self, w: &mut Writer) {
        let result = fs::read(&self.path).and_then(|bytes| {
            let body = bytes.get(format::HEADER_LEN..).unwrap_or_default();
            let state = fold(format::scan(body).entries, self.opts.capacity);
            let entries: Vec<Entry> = state.iter().map(|(k, s)| s.entry(*k)).collect();
            rewrite(&self.path, self.opts.fingerprint, &entries)
        });
        match result.and_then(|f| Ok((f.metadata()?.len(), f))) {
            Ok((len, file)) => {
                w.file = file;
                w.len = len;
                w.dirty = false;
                w.compact_at = self.opts.max_bytes.max(len * 2);
            }
            Err(e) => {
                w.compact_at = w.len + self.opts.max_bytes / 4;
                self.log.limited(
                    "journal-compact",
                    Level::Error,
                    format_args!(
                        "journal {}: compaction failed ({e}); it grows past journal_max_bytes until it succeeds",
                        self.path.display()
                    ),
                );
            }
        }
    }
}

/// The entries of an existing journal; a foreign, damaged or stale file is set aside.
fn read_existing(path: &Path, opts: &Options, log: &Logger) -> Vec<Entry> {
    let bytes = match read_bounded(path) {
        Ok(Some(b)) => b,
        Ok(None) => return Vec::new(),
        Err(e) => {
            log.warn(format_args!(
                "journal {}: cannot be read ({e}); setting it aside and starting a new one",
                path.display()
            ));
            set_aside(path, "unreadable", log);
            return Vec::new();
        }
    };
    match format::read_header(&bytes, opts.fingerprint) {
        Header::Empty => Vec::new(),
        Header::Foreign => {
            log.warn(format_args!(
                "journal {}: not a firehose_fanout journal (or its header is damaged): setting it aside and starting a new one",
                path.display()
            ));
            set_aside(path, "foreign", log);
            Vec::new()
        }
        Header::OtherSettings => {
            log.info(format_args!(
                "journal {}: written with other record settings or another plugin version; starting a new one (chunks sent again now may be delivered twice)",
                path.display()
            ));
            Vec::new()
        }
        Header::Matches => {
            let s = format::scan(&bytes[format::HEADER_LEN..]);
            match s.tail {
                Tail::Clean => {}
                Tail::Torn => log.info(format_args!(
                    "journal {}: cut off an incomplete last entry (a write interrupted by a crash)",
                    path.display()
                )),
                Tail::Corrupt => {
                    log.warn(format_args!(
                        "journal {}: damaged after {} good entries; keeping those, setting the file aside",
                        path.display(),
                        s.entries.len()
                    ));
                    set_aside(path, "corrupt", log);
                }
            }
            s.entries
        }
    }
}

fn read_bounded(path: &Path) -> io::Result<Option<Vec<u8>>> {
    let mut f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let len = f.metadata()?.len();
    if len > MAX_READ {
        return Err(io::Error::other(format!(
            "{len} bytes, more than a journal holds"
        )));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    f.read_to_end(&mut bytes)?;
    Ok(Some(bytes))
}

/// Renames a file out of the way (`NAME.WHY-SECONDS`), keeping it for a look.
fn set_aside(path: &Path, why: &str, log: &Logger) {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut to = path.as_os_str().to_owned();
    to.push(format!(".{why}-{secs}"));
    if let Err(e) = fs::rename(path, &to) {
        log.warn(format_args!(
            "journal {}: cannot set it aside ({e}); it is overwritten",
            path.display()
        ));
    }
}

/// Writes the header and `entries` to a new file, synced, in place of `path`; returns it
/// open for appending.
fn rewrite(path: &Path, fingerprint: u64, entries: &[Entry]) -> io::Result<File> {
    let mut bytes = format::header(fingerprint).to_vec();
    for e in entries {
        format::encode(e, &mut bytes);
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let written = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_data()?;
        fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    // The rename itself is durable once the folder is synced.
    if let Some(dir) = path.parent() {
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
    OpenOptions::new().append(true).open(path)
}

/// A fingerprint of what decides how a chunk becomes records (their order and number),
/// so a journal written under other settings is not read as this one.
pub fn fingerprint(parts: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(format!("{} {parts}", env!("CARGO_PKG_VERSION")).as_bytes())
}
