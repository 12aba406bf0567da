//! Hands memory that glibc's allocator keeps after large frees back to the system.
//!
//! A flush allocates chunk-sized buffers (records, aggregates, request bodies) and frees
//! them when it ends. glibc raises its mmap threshold after such frees, so later buffers of
//! that size come from its arenas and, once freed, stay resident: at 2 MB chunks that is
//! about as much again as the live buffers. `malloc_trim` returns those free pages.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// At most this often, process-wide: trimming walks every arena.
const EVERY: Duration = Duration::from_millis(200);

/// Returns freed memory to the system, at most every 200 ms; called after a flush ends.
pub fn release_freed() {
    static LAST: Mutex<Option<Instant>> = Mutex::new(None);
    // Another thread is trimming (or just did): nothing to add.
    let Ok(mut last) = LAST.try_lock() else {
        return;
    };
    if last.is_some_and(|t| t.elapsed() < EVERY) {
        return;
    }
    *last = Some(Instant::now());
    drop(last);
    trim();
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim() {
    // SAFETY: malloc_trim takes glibc's arena locks itself and only releases free pages;
    // it may be called from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() {}
