//! The process-global store of the lines a plugin logs through
//! `api->log_print`, and of host-detected ABI misuse ("violations").
//!
//! `log_print` is C-variadic, so it is implemented in C (`csrc/flb_host.c`):
//! it formats the message with `vsnprintf` exactly as Fluent Bit does
//! (including the ~4051-byte truncation and the ~8 KiB of caller stack it
//! uses) and hands the result to [`log_sink`] here. The store is shared by all
//! threads and all loaded plugins of the process.

use std::collections::VecDeque;
use std::ffi::{c_char, c_int, CStr};
use std::sync::{Condvar, Mutex, MutexGuard, Once};
use std::time::{Duration, Instant};

use crate::abi::log_level_name;

/// Oldest lines are dropped beyond this many stored lines.
pub const LOG_CAPACITY: usize = 200_000;

/// One line logged by the plugin through `api->log_print`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// Fluent Bit log level (`FLB_LOG_ERROR` = 1 ... `FLB_LOG_TRACE` = 5).
    pub level: i32,
    /// The `file` argument (empty when NULL).
    pub file: String,
    /// The `line` argument.
    pub line: i32,
    /// The formatted message (lossy UTF-8), truncated like Fluent Bit does.
    pub message: String,
}

struct Store {
    lines: VecDeque<LogLine>,
    dropped: u64,
}

static STORE: Mutex<Store> = Mutex::new(Store {
    lines: VecDeque::new(),
    dropped: 0,
});
static STORE_CHANGED: Condvar = Condvar::new();
static VIOLATIONS: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

extern "C" {
    pub(crate) fn flb_host_log_print(
        level: c_int,
        file: *const c_char,
        line: c_int,
        fmt: *const c_char,
        ...
    );
    fn flb_host_set_log_sink(
        sink: unsafe extern "C" fn(c_int, *const c_char, c_int, *const c_char, usize),
    );
}

/// Installs the Rust sink into the C `log_print` (idempotent).
pub(crate) fn install_sink() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // SAFETY: `log_sink` has exactly the C signature the C side expects
        // and stays valid for the life of the process.
        unsafe { flb_host_set_log_sink(log_sink) };
    });
}

/// Called by the C `log_print` with the formatted message.
///
/// # Safety
/// `file` is NULL or a NUL-terminated string; `msg` points to `len` bytes.
unsafe extern "C" fn log_sink(
    level: c_int,
    file: *const c_char,
    line: c_int,
    msg: *const c_char,
    len: usize,
) {
    let file = if file.is_null() {
        String::new()
    } else {
        // SAFETY: non-NULL `file` is a NUL-terminated string (log_print contract).
        unsafe { CStr::from_ptr(file) }
            .to_string_lossy()
            .into_owned()
    };
    let message = if msg.is_null() {
        String::new()
    } else {
        // SAFETY: the C side passes a buffer of exactly `len` initialised bytes.
        let bytes = unsafe { std::slice::from_raw_parts(msg.cast::<u8>(), len) };
        String::from_utf8_lossy(bytes).into_owned()
    };
    if std::env::var_os("FLB_HOST_ECHO_LOGS").is_some_and(|v| v == "1") {
        eprintln!("[flb-host] [{:>5}] {}", log_level_name(level), message);
    }
    let mut store = lock(&STORE);
    if store.lines.len() >= LOG_CAPACITY {
        store.lines.pop_front();
        store.dropped += 1;
    }
    store.lines.push_back(LogLine {
        level,
        file,
        line,
        message,
    });
    drop(store);
    STORE_CHANGED.notify_all();
}

/// All stored log lines, oldest first.
pub fn logs() -> Vec<LogLine> {
    lock(&STORE).lines.iter().cloned().collect()
}

/// Stored log lines whose message contains `needle`.
pub fn logs_containing(needle: &str) -> Vec<LogLine> {
    lock(&STORE)
        .lines
        .iter()
        .filter(|l| l.message.contains(needle))
        .cloned()
        .collect()
}

/// Removes every stored log line (the store is process-global: tests that run
/// in parallel should rather filter on a unique marker).
pub fn clear_logs() {
    let mut store = lock(&STORE);
    store.lines.clear();
    store.dropped = 0;
}

/// How many lines were dropped because the store held [`LOG_CAPACITY`] lines.
pub fn dropped_log_lines() -> u64 {
    lock(&STORE).dropped
}

/// Waits until a stored line satisfies `pred` (lines logged from the plugin's
/// own threads arrive asynchronously) and returns it, or `None` on timeout.
pub fn wait_for_log(pred: impl Fn(&LogLine) -> bool, timeout: Duration) -> Option<LogLine> {
    let deadline = Instant::now() + timeout;
    let mut store = lock(&STORE);
    loop {
        if let Some(l) = store.lines.iter().find(|l| pred(l)) {
            return Some(l.clone());
        }
        let now = Instant::now();
        if now >= deadline {
            return None;
        }
        store = STORE_CHANGED
            .wait_timeout(store, deadline - now)
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
}

/// Records an ABI misuse detected by the host (for example a call of
/// `output_get_property` with an `o_ins` that is not a live instance).
pub(crate) fn violation(msg: String) {
    eprintln!("[flb-host] ABI violation: {msg}");
    lock(&VIOLATIONS).push(msg);
}

/// ABI misuses detected so far in this process: calls through `struct
/// flb_api` with a NULL, unknown or already exited `o_ins`, calls of the
/// input/custom entries by an output plugin. Each is also printed to stderr.
/// Fluent Bit itself would crash or read freed memory in these cases.
pub fn violations() -> Vec<String> {
    lock(&VIOLATIONS).clone()
}

/// Clears [`violations`].
pub fn clear_violations() {
    lock(&VIOLATIONS).clear();
}
