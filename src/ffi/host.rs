//! Safe wrappers over the host's `struct flb_api`: property lookup and logging.

use super::abi::{FlbApi, LogCheckFn, LogPrintFn};
use crate::telemetry::log::{Level, LogSink};
use std::ffi::{CStr, CString};
use std::os::raw::c_void;
use std::sync::RwLock;

/// The raw pieces of the host that a running instance needs.
#[derive(Clone, Copy)]
struct Raw {
    o_ins: *mut c_void,
    log_print: Option<LogPrintFn>,
    log_check: Option<LogCheckFn>,
}

// SAFETY: `o_ins` is Fluent Bit's output instance, which lives until our exit callback
// returns; `log_print` and `output_log_check` are safe to call from any thread (Go plugins
// call them from goroutine threads). `HostSink::close` stops all use before exit returns.
unsafe impl Send for Raw {}
unsafe impl Sync for Raw {}

/// Logs through Fluent Bit's `log_print`, honouring the instance's `log_level`.
pub struct HostSink {
    raw: RwLock<Option<Raw>>,
}

impl HostSink {
    pub(super) fn new(api: &FlbApi, o_ins: *mut c_void) -> HostSink {
        HostSink {
            raw: RwLock::new(Some(Raw {
                o_ins,
                log_print: api.log_print,
                log_check: api.output_log_check,
            })),
        }
    }

    /// After this, log lines go nowhere: the instance is being torn down.
    pub fn close(&self) {
        *self.raw.write().unwrap_or_else(|p| p.into_inner()) = None;
    }
}

impl LogSink for HostSink {
    fn enabled(&self, level: Level) -> bool {
        let guard = self.raw.read().unwrap_or_else(|p| p.into_inner());
        let Some(raw) = *guard else { return false };
        match raw.log_check {
            // SAFETY: see `Raw`; the read guard keeps `close` (and so exit) waiting.
            Some(check) => unsafe { check(raw.o_ins, level as i32) != 0 },
            None => level <= Level::Info,
        }
    }

    fn write(&self, level: Level, line: &str) {
        let guard = self.raw.read().unwrap_or_else(|p| p.into_inner());
        let Some(Raw {
            log_print: Some(print),
            ..
        }) = *guard
        else {
            return;
        };
        // Interior NULs would cut the line short; replace them.
        let msg = CString::new(line.replace('\0', "\\0")).unwrap_or_default();
        // SAFETY: a constant "%s" format with one NUL-terminated string argument, as the
        // ABI asks; `file` is a static NUL-terminated string.
        unsafe {
            print(
                level as i32,
                c"firehose_fanout".as_ptr(),
                0,
                c"%s".as_ptr(),
                msg.as_ptr(),
            )
        };
    }
}

/// Reads a property of the instance through `output_get_property`; copies the value.
pub(super) fn property(api: &FlbApi, o_ins: *mut c_void, key: &str) -> Option<String> {
    let get = api.output_get_property?;
    let key = CString::new(key).ok()?;
    // SAFETY: `key` is NUL-terminated; Fluent Bit returns NULL or a NUL-terminated string it
    // owns, valid at least until the next call, and we copy it at once.
    unsafe {
        let v = get(key.as_ptr(), o_ins);
        if v.is_null() {
            None
        } else {
            Some(CStr::from_ptr(v).to_string_lossy().into_owned())
        }
    }
}
