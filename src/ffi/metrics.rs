//! Fluent Bit's cmetrics functions, found at run time with `dlsym(RTLD_DEFAULT, ...)` (the
//! official `fluent-bit` executable exports them), used to create and update metrics in
//! the instance's `struct cmt`. Absent functions or context: no sink, the plugin logs a
//! summary instead.

use crate::telemetry::metrics::{Kind, MetricDef, MetricsSink};
use std::collections::HashMap;
use std::ffi::CString;
use std::os::raw::{c_char, c_int, c_void};
use std::sync::Mutex;

type CreateFn = unsafe extern "C" fn(
    cmt: *mut c_void,
    ns: *mut c_char,
    subsystem: *mut c_char,
    name: *mut c_char,
    help: *mut c_char,
    label_count: c_int,
    label_keys: *mut *mut c_char,
) -> *mut c_void;
type UpdateFn = unsafe extern "C" fn(
    metric: *mut c_void,
    timestamp_ns: u64,
    value: f64,
    labels_count: c_int,
    label_vals: *mut *mut c_char,
) -> c_int;

#[derive(Clone, Copy)]
struct Api {
    counter_create: CreateFn,
    counter_add: UpdateFn,
    gauge_create: CreateFn,
    gauge_set: UpdateFn,
}

fn symbol(name: &std::ffi::CStr) -> Option<*mut c_void> {
    // SAFETY: dlsym with RTLD_DEFAULT and a NUL-terminated name only looks a symbol up.
    let p = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) };
    (!p.is_null()).then_some(p)
}

fn resolve() -> Option<Api> {
    let cc = symbol(c"cmt_counter_create")?;
    let ca = symbol(c"cmt_counter_add")?;
    let gc = symbol(c"cmt_gauge_create")?;
    let gs = symbol(c"cmt_gauge_set")?;
    // SAFETY: these are cmetrics' functions with the signatures documented in
    // docs/fluent-bit-abi.md (cmetrics' public header).
    unsafe {
        Some(Api {
            counter_create: std::mem::transmute::<*mut c_void, CreateFn>(cc),
            counter_add: std::mem::transmute::<*mut c_void, UpdateFn>(ca),
            gauge_create: std::mem::transmute::<*mut c_void, CreateFn>(gc),
            gauge_set: std::mem::transmute::<*mut c_void, UpdateFn>(gs),
        })
    }
}

struct State {
    cmt: *mut c_void,
    /// Created metric objects by name (null: creation failed, do not retry).
    metrics: HashMap<&'static str, *mut c_void>,
}

/// Metrics of one instance in Fluent Bit's cmetrics context.
pub struct CmtSink {
    api: Api,
    /// All calls are serialised: creating a label combination is not thread-safe in
    /// cmetrics. `None` once closed.
    state: Mutex<Option<State>>,
}

// SAFETY: the raw pointers are only used under the mutex; the cmt context lives until the
// instance's exit callback, which closes the sink first.
unsafe impl Send for CmtSink {}
unsafe impl Sync for CmtSink {}

impl CmtSink {
    /// A sink for `cmt`, or None when it is NULL or the host lacks the functions.
    pub fn new(cmt: *mut c_void) -> Option<CmtSink> {
        if cmt.is_null() {
            return None;
        }
        Some(CmtSink {
            api: resolve()?,
            state: Mutex::new(Some(State {
                cmt,
                metrics: HashMap::new(),
            })),
        })
    }
}

fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

fn cstrings(v: &[&str]) -> Vec<CString> {
    v.iter()
        .map(|s| CString::new(s.replace('\0', "")).unwrap_or_default())
        .collect()
}

impl MetricsSink for CmtSink {
    fn update(&self, def: &'static MetricDef, label_values: &[&str], value: f64) {
        let mut guard = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let Some(state) = guard.as_mut() else { return };
        let cmt = state.cmt;
        let metric = *state.metrics.entry(def.name).or_insert_with(|| {
            let ns = CString::new("fluentbit").unwrap_or_default();
            let sub = CString::new(crate::PLUGIN_NAME).unwrap_or_default();
            let name = CString::new(def.name).unwrap_or_default();
            let help = CString::new(def.help).unwrap_or_default();
            let keys = cstrings(def.labels);
            let mut key_ptrs: Vec<*mut c_char> =
                keys.iter().map(|k| k.as_ptr() as *mut c_char).collect();
            let create = match def.kind {
                Kind::Counter => self.api.counter_create,
                Kind::Gauge => self.api.gauge_create,
            };
            // SAFETY: `cmt` is the instance's live context (checked non-null); the strings
            // are NUL-terminated and cmetrics copies them; the key array has `labels.len()`
            // entries.
            unsafe {
                create(
                    cmt,
                    ns.as_ptr() as *mut c_char,
                    sub.as_ptr() as *mut c_char,
                    name.as_ptr() as *mut c_char,
                    help.as_ptr() as *mut c_char,
                    key_ptrs.len() as c_int,
                    key_ptrs.as_mut_ptr(),
                )
            }
        });
        if metric.is_null() || label_values.len() != def.labels.len() {
            return;
        }
        let vals = cstrings(label_values);
        let mut val_ptrs: Vec<*mut c_char> =
            vals.iter().map(|v| v.as_ptr() as *mut c_char).collect();
        let update = match def.kind {
            Kind::Counter => self.api.counter_add,
            Kind::Gauge => self.api.gauge_set,
        };
        // SAFETY: `metric` came from the matching create function of this context, the
        // label values match its label count and are NUL-terminated; calls are serialised.
        unsafe {
            update(
                metric,
                now_ns(),
                value,
                val_ptrs.len() as c_int,
                val_ptrs.as_mut_ptr(),
            );
        }
    }

    fn close(&self) {
        *self.state.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}
