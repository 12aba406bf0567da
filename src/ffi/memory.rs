//! Hands memory that glibc's allocator keeps after large frees back to the system.
//!
//! A flush allocates chunk-sized buffers (records, aggregates, request bodies) and frees
//! them when it ends. glibc raises its mmap threshold after such frees, so later buffers of
//! that size come from its arenas and, once freed, stay resident: at 2 MB chunks that is
//! about as much again as the live buffers. `malloc_trim` returns those free pages.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// At most this often, process-wide: trimming walks every arena.
const EVERY: Duration = Duration::from_millis(200);

/// Returns freed memory to the system, at most every 200 ms; called after a flush ends.
pub fn release_freed() {
    static START: OnceLock<Instant> = OnceLock::new();
    static LAST_MS: AtomicU64 = AtomicU64::new(0);
    let now = START.get_or_init(Instant::now).elapsed().as_millis() as u64;
    let last = LAST_MS.load(Ordering::Relaxed);
    if now < last + EVERY.as_millis() as u64
        || LAST_MS
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
    {
        return;
    }
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
