//! The C symbols Fluent Bit calls. All `unsafe` of the crate lives in this module.
//!
//! Every exported body runs behind `guard`, a panic boundary: no unwinding ever reaches
//! C. Null pointers and zero sizes are checked here, before anything else sees them.
#![deny(unsafe_op_in_unsafe_fn)]

pub mod abi;
mod chunk;
mod host;
pub mod memory;
mod metrics;
mod reload;

use crate::config::Config;
use crate::delivery::Chunk;
use crate::delivery::FlushCode;
use crate::instance::{Host, Instance};
use crate::telemetry::log::Logger;
use abi::*;
use chunk::{Loan, Withdraw};
use host::HostSink;
use std::ffi::{CStr, CString};
use std::os::raw::{c_char, c_int, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Runs `f`, turning a panic into `on_panic`.
fn guard<T>(on_panic: T, f: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(on_panic)
}

/// What `remote_context` points to.
struct Context {
    instance: Instance,
    sink: Arc<HostSink>,
}

/// Keeps this library mapped for the life of the process (RTLD_NODELETE), once.
///
/// Fluent Bit `dlclose`s a plugin at shutdown and on hot reload. Unmapping a Rust library
/// that ran a tokio runtime and the AWS SDK is a hazard for nothing: a thread stuck in a
/// blocking call (a DNS lookup) past the shutdown grace, or a thread-local destructor, would
/// run in unmapped code and crash Fluent Bit; and the SDK's process-wide statics would leak
/// on every unload. Pinned, a reload reuses the same code and the statics stay reachable.
fn pin_library() {
    static PINNED: std::sync::Once = std::sync::Once::new();
    PINNED.call_once(|| {
        // SAFETY: dladdr only reads the loader's tables for an address inside this library;
        // `info` is plain data it fills in.
        let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
        let addr = pin_library as *const () as *const c_void;
        if unsafe { libc::dladdr(addr, &mut info) } == 0 || info.dli_fname.is_null() {
            return;
        }
        // SAFETY: RTLD_NOLOAD only takes another reference to the already loaded library
        // (named by the loader's own string) and marks it NODELETE; the handle is kept on
        // purpose, never closed.
        unsafe {
            libc::dlopen(
                info.dli_fname,
                libc::RTLD_NOW | libc::RTLD_NOLOAD | libc::RTLD_NODELETE,
            )
        };
    });
}

/// A `malloc`ed copy of `s`, released by `FLBPluginUnregister`.
fn malloc_cstr(s: &str) -> *mut c_char {
    let Ok(c) = CString::new(s) else {
        return std::ptr::null_mut();
    };
    // SAFETY: `c` is NUL-terminated; strdup copies it into malloc'd memory (or NULL).
    unsafe { libc::strdup(c.as_ptr()) }
}

/// # Safety
/// `def` is NULL or points to a writable `flb_plugin_proxy_def`.
///
/// Registration: fills the plugin definition (name, description, kind).
#[no_mangle]
pub unsafe extern "C" fn FLBPluginRegister(def: *mut FlbPluginProxyDef) -> c_int {
    guard(-1, || {
        if def.is_null() {
            return -1;
        }
        pin_library();
        // SAFETY: Fluent Bit passes a valid, writable definition for this call.
        let def = unsafe { &mut *def };
        def.type_ = FLB_PROXY_OUTPUT_PLUGIN;
        def.proxy = FLB_PROXY_GOLANG;
        def.flags = 0;
        def.event_type = 0;
        def.name = malloc_cstr(crate::PLUGIN_NAME);
        def.description = malloc_cstr(&crate::description());
        if def.name.is_null() || def.description.is_null() {
            return -1;
        }
        0
    })
}

/// # Safety
/// `def` is NULL or the definition `FLBPluginRegister` filled.
///
/// Called before `dlclose`: frees the registration strings. Fluent Bit copies the name,
/// keeps pointing at the description while the plugin is registered, and frees neither.
#[no_mangle]
pub unsafe extern "C" fn FLBPluginUnregister(def: *mut FlbPluginProxyDef) {
    guard((), || {
        if def.is_null() {
            return;
        }
        // SAFETY: `def` is the definition FLBPluginRegister filled; its strings came from
        // strdup (malloc) or are NULL, and are nulled here so a second call is harmless.
        unsafe {
            libc::free((*def).name as *mut c_void);
            libc::free((*def).description as *mut c_void);
            (*def).name = std::ptr::null_mut();
            (*def).description = std::ptr::null_mut();
        }
    })
}

static INSTANCE_SEQ: AtomicUsize = AtomicUsize::new(0);

/// # Safety
/// `plugin` is NULL or Fluent Bit's `flbgo_output_plugin` with valid `api` and `context`.
///
/// Starts one `[OUTPUT]` instance. Returns FLB_OK, or FLB_ERROR after a log line saying
/// what to change.
#[no_mangle]
pub unsafe extern "C" fn FLBPluginInit(plugin: *mut FlbGoOutputPlugin) -> c_int {
    guard(FLB_ERROR, || {
        if plugin.is_null() {
            return FLB_ERROR;
        }
        // SAFETY: Fluent Bit passes a valid plugin struct for the duration of the call.
        let p = unsafe { &*plugin };
        if p.api.is_null() || p.context.is_null() {
            return FLB_ERROR;
        }
        // SAFETY: checked non-null; Fluent Bit's api table lives as long as the process.
        let api = unsafe { &*p.api };
        let o_ins = p.o_ins;
        let host_sink = Arc::new(HostSink::new(api, o_ins));
        let name = host::property(api, o_ins, "alias").unwrap_or_else(|| {
            format!(
                "{}.{}",
                crate::PLUGIN_NAME,
                INSTANCE_SEQ.fetch_add(1, Ordering::Relaxed)
            )
        });
        let log = Logger::new(host_sink.clone(), &name);
        let config = match Config::from_lookup(|k| host::property(api, o_ins, k)) {
            Ok(c) => c,
            Err(e) => {
                log.error(format_args!("configuration error: {e}"));
                return FLB_ERROR;
            }
        };
        let cmt = match api.output_get_cmt_instance {
            // SAFETY: Fluent Bit's function, called with the instance it gave us.
            Some(get) => unsafe { get(o_ins) },
            None => std::ptr::null_mut(),
        };
        let sink = metrics::CmtSink::new(cmt)
            .map(|s| Arc::new(s) as Arc<dyn crate::telemetry::metrics::MetricsSink>);
        if sink.is_none() {
            log.debug(format_args!(
                "no cmetrics in this host: a summary line is logged every {:?} instead",
                config.summary_interval
            ));
        }
        let host = Host {
            name: name.clone(),
            log: log.clone(),
            metrics: sink,
            release_memory: memory::release_freed,
        };
        let instance = match Instance::start(config, host) {
            Ok(i) => i,
            Err(e) => {
                log.error(format_args!("cannot start: {e}"));
                return FLB_ERROR;
            }
        };
        let ctx = Box::new(Context {
            instance,
            sink: host_sink,
        });
        let ctx = Box::into_raw(ctx);
        reload::started(ctx as usize, &name, &log);
        // SAFETY: `context` was checked non-null and is Fluent Bit's proxy context for
        // this instance; it hands `remote_context` back to flush and exit.
        unsafe { (*p.context).remote_context = ctx as *mut c_void };
        FLB_OK
    })
}

/// Called once after every instance started, with whether hot reload is on: warns where
/// the setup is the one Fluent Bit crashes with at a reload (`reload`).
#[no_mangle]
pub extern "C" fn FLBPluginOutputPreRun(hot_reload_enabled: c_int) -> c_int {
    guard(FLB_OK, || {
        reload::pre_run(hot_reload_enabled != 0);
        FLB_OK
    })
}

/// The name of the calling thread, to tell Fluent Bit's engine thread from its workers.
fn current_thread_name() -> String {
    let mut buf = [0 as c_char; 32];
    // SAFETY: the buffer is 32 bytes (above the 16 that Linux thread names take) and
    // pthread_getname_np NUL-terminates on success.
    let ok = unsafe { libc::pthread_getname_np(libc::pthread_self(), buf.as_mut_ptr(), buf.len()) };
    if ok != 0 {
        return String::new();
    }
    // SAFETY: NUL-terminated by pthread_getname_np.
    unsafe { CStr::from_ptr(buf.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

/// # Safety
/// `ctx` is NULL or what `FLBPluginInit` stored; `data` is NULL or `size` readable bytes;
/// `tag` is NULL or a NUL-terminated string.
///
/// Flushes one chunk. Lends it to the plugin's threads (they read it in place) and waits
/// for them: this runs on a 64 KiB coroutine stack, so it does no work of its own. The
/// loan ends before the call returns, whatever the outcome.
#[no_mangle]
pub unsafe extern "C" fn FLBPluginFlushCtx(
    ctx: *mut c_void,
    data: *const c_void,
    size: usize,
    tag: *const c_char,
) -> c_int {
    guard(FLB_RETRY, || {
        if ctx.is_null() {
            return FLB_ERROR;
        }
        // SAFETY: `ctx` is the pointer FLBPluginInit stored; it stays valid until exit.
        let ctx = unsafe { &*(ctx as *const Context) };
        if data.is_null() && size > 0 {
            return FLB_ERROR;
        }
        // An empty chunk (no bytes) has nothing to deliver: FLB_OK, like any chunk whose
        // records are all delivered.
        let loan = if data.is_null() || size == 0 {
            None
        } else {
            // SAFETY: Fluent Bit guarantees `size` readable bytes at `data`, unchanged, for
            // the length of this call; `_withdraw` ends the loan before the call returns
            // (unwinding included), after which the plugin's threads cannot read them.
            Some(Arc::new(unsafe { Loan::new(data as *const u8, size) }))
        };
        let _withdraw = loan.as_deref().map(Withdraw);
        let chunk = match &loan {
            Some(l) => Chunk::Lent(l.clone()),
            None => Chunk::Owned(Vec::new()),
        };
        let tag = if tag.is_null() {
            String::new()
        } else {
            // SAFETY: non-null, NUL-terminated copy owned by Fluent Bit during the call.
            unsafe { CStr::from_ptr(tag) }
                .to_string_lossy()
                .into_owned()
        };
        ctx.instance
            .note_flush_thread(&current_thread_name(), reload::hot_reload());
        match ctx.instance.flush(chunk, tag) {
            FlushCode::Ok => FLB_OK,
            FlushCode::Retry => FLB_RETRY,
            FlushCode::Error => FLB_ERROR,
        }
    })
}

/// # Safety
/// `ctx` is NULL or what `FLBPluginInit` stored, not yet exited.
///
/// Stops one instance: no new work, waits for flushes in flight, releases everything.
#[no_mangle]
pub unsafe extern "C" fn FLBPluginExitCtx(ctx: *mut c_void) -> c_int {
    guard(FLB_ERROR, || {
        if ctx.is_null() {
            return FLB_ERROR;
        }
        reload::exited(ctx as usize);
        // SAFETY: `ctx` came from Box::into_raw in FLBPluginInit and Fluent Bit calls exit
        // once per instance, after its last flush.
        let ctx = unsafe { Box::from_raw(ctx as *mut Context) };
        let grace = ctx
            .instance
            .config()
            .flush_timeout
            .min(Duration::from_secs(10));
        ctx.instance.shutdown(grace);
        ctx.sink.close();
        drop(ctx);
        FLB_OK
    })
}
