//! Output instances: the fake `struct flb_output_instance`, the `struct
//! flb_api` functions the plugin calls back, `FLBPluginInit`, the flushes and
//! the exit sequence.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::ptr;
use std::sync::atomic::{AtomicI32, AtomicPtr, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::abi::*;
use crate::log::{flb_host_log_print, violation};
use crate::plugin::{Plugin, PluginInner};
use crate::stack::CoroStack;
use crate::HostError;

// ---------------------------------------------------------------------------
// The fake `struct flb_output_instance`
// ---------------------------------------------------------------------------

/// Host-private data behind the opaque `o_ins` pointer.
pub(crate) struct OutputInstance {
    /// Properties visible through `output_get_property`, in order; `None`
    /// values are properties given with an empty value (Fluent Bit returns
    /// NULL for them).
    props: Vec<(String, Option<CString>)>,
    /// Core properties consumed by Fluent Bit (not visible to the plugin).
    core: Vec<(String, String)>,
    log_level: AtomicI32,
    cmt: AtomicPtr<c_void>,
}

/// Addresses of live `OutputInstance`s: every `struct flb_api` call checks
/// its `o_ins` against this list under the read lock, so a call with a stale
/// or foreign pointer is reported instead of dereferenced.
static LIVE: RwLock<Vec<usize>> = RwLock::new(Vec::new());

fn live_read() -> RwLockReadGuard<'static, Vec<usize>> {
    LIVE.read().unwrap_or_else(|e| e.into_inner())
}

fn live_write() -> RwLockWriteGuard<'static, Vec<usize>> {
    LIVE.write().unwrap_or_else(|e| e.into_inner())
}

/// Resolves `o_ins` while the caller holds the registry read lock.
fn lookup<'a>(
    live: &'a RwLockReadGuard<'static, Vec<usize>>,
    o_ins: *mut c_void,
    what: &str,
) -> Option<&'a OutputInstance> {
    if o_ins.is_null() || !live.contains(&(o_ins as usize)) {
        violation(format!(
            "{what} called with o_ins {o_ins:p}, which is not a live output instance \
             (NULL, not an o_ins, or already exited)"
        ));
        return None;
    }
    // SAFETY: the address is registered, so it points to a live boxed
    // OutputInstance; it cannot be freed while `live` (a read guard) is held
    // because removal takes the write lock before the box is freed.
    Some(unsafe { &*(o_ins as *const OutputInstance) })
}

/// Core keys that `flb_output_set_property` consumes whatever the value.
const CORE_ALWAYS: &[&str] = &[
    "match",
    "host",
    "port",
    "retry_limit",
    "tls.vhost",
    "tls.ca_path",
    "tls.ca_file",
    "tls.crt_file",
    "tls.key_file",
    "tls.key_passwd",
    "tls.min_version",
    "tls.max_version",
    "tls.ciphers",
    "tls.proxy.ca_path",
    "tls.proxy.ca_file",
];

/// Core keys that `flb_output_set_property` consumes only when the value is
/// not empty (with an empty value they become ordinary properties).
const CORE_IF_VALUE: &[&str] = &[
    "match_regex",
    "alias",
    "log_level",
    "log_suppress_interval",
    "ipv6",
    "tls",
    "tls.verify",
    "tls.verify_hostname",
    "tls.debug",
    "tls.proxy.verify",
    "tls.proxy.verify_hostname",
    "storage.total_limit_size",
    "workers",
];

/// `flb_env_var_translate`: `${VAR}` and `${VAR:-default}` from the process
/// environment; an unset variable without default expands to nothing.
fn env_translate(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let mut rest = v;
    while let Some(start) = rest.find("${") {
        let Some(end) = rest[start + 2..].find('}') else {
            break;
        };
        out.push_str(&rest[..start]);
        let inner = &rest[start + 2..start + 2 + end];
        let (name, default) = match inner.find(":-") {
            Some(i) => (&inner[..i], Some(&inner[i + 2..])),
            None => (inner, None),
        };
        match (std::env::var(name).ok(), default) {
            (Some(val), Some(d)) if val.is_empty() => out.push_str(d),
            (Some(val), _) => out.push_str(&val),
            (None, Some(d)) => out.push_str(d),
            (None, None) => {}
        }
        rest = &rest[start + 2 + end + 1..];
    }
    out.push_str(rest);
    out
}

impl OutputInstance {
    /// The configuration loader plus `flb_output_set_property` for each key.
    fn new(
        props: &[(&str, &str)],
        default_level: i32,
        plugin_flags: i32,
        cmt: *mut c_void,
    ) -> Result<OutputInstance, HostError> {
        let mut ins = OutputInstance {
            props: Vec::new(),
            core: Vec::new(),
            log_level: AtomicI32::new(-1),
            cmt: AtomicPtr::new(cmt),
        };
        for &(k, v) in props {
            let lk = k.to_ascii_lowercase();
            // `name` selects the plugin and `routes` is YAML routing: the
            // configuration loader never passes them to the instance.
            if lk == "name" || lk == "routes" {
                ins.core.push((k.to_string(), v.to_string()));
                continue;
            }
            let tmp = env_translate(v);
            let has_value = !tmp.is_empty();
            let consumed = CORE_ALWAYS.contains(&lk.as_str())
                || (has_value
                    && (CORE_IF_VALUE.contains(&lk.as_str())
                        || lk.starts_with("net.")
                        || lk.starts_with("oauth2")));
            if consumed {
                if lk == "log_level" {
                    let level =
                        parse_log_level(&tmp).ok_or_else(|| HostError::InvalidProperty {
                            key: k.to_string(),
                            value: v.to_string(),
                            reason: "not one of off, error, warn, info, debug, trace".into(),
                        })?;
                    ins.log_level.store(level, Ordering::Relaxed);
                }
                if lk == "tls"
                    && ["true", "on", "yes"]
                        .iter()
                        .any(|t| tmp.eq_ignore_ascii_case(t))
                    && plugin_flags & 2 == 0
                {
                    return Err(HostError::InvalidProperty {
                        key: k.to_string(),
                        value: v.to_string(),
                        reason: "the plugin does not support TLS (FLB_IO_TLS flag not set)".into(),
                    });
                }
                ins.core.push((k.to_string(), tmp));
                continue;
            }
            let val = if has_value {
                Some(CString::new(tmp).map_err(|_| HostError::InvalidString(v.to_string()))?)
            } else {
                None
            };
            ins.props.push((k.to_string(), val));
        }
        if ins.log_level.load(Ordering::Relaxed) == -1 {
            ins.log_level.store(default_level, Ordering::Relaxed);
        }
        Ok(ins)
    }

    /// `flb_kv_get_key_value`: first key of the same length that matches
    /// case-insensitively.
    fn get(&self, key: &[u8]) -> *const c_char {
        if key.is_empty() {
            return ptr::null();
        }
        for (k, v) in &self.props {
            if k.as_bytes().eq_ignore_ascii_case(key) {
                return v.as_ref().map_or(ptr::null(), |v| v.as_ptr());
            }
        }
        ptr::null()
    }
}

// ---------------------------------------------------------------------------
// struct flb_api
// ---------------------------------------------------------------------------

unsafe extern "C" fn api_output_get_property(
    key: *const c_char,
    o_ins: *mut c_void,
) -> *const c_char {
    let live = live_read();
    let Some(ins) = lookup(&live, o_ins, "output_get_property") else {
        return ptr::null();
    };
    if key.is_null() {
        return ptr::null();
    }
    // SAFETY: non-NULL `key` is a NUL-terminated string (API contract).
    let key = unsafe { CStr::from_ptr(key) };
    ins.get(key.to_bytes())
}

unsafe extern "C" fn api_output_get_cmt_instance(o_ins: *mut c_void) -> *mut c_void {
    let live = live_read();
    match lookup(&live, o_ins, "output_get_cmt_instance") {
        Some(ins) => ins.cmt.load(Ordering::SeqCst),
        None => ptr::null_mut(),
    }
}

unsafe extern "C" fn api_output_log_check(o_ins: *mut c_void, level: c_int) -> c_int {
    let live = live_read();
    match lookup(&live, o_ins, "output_log_check") {
        Some(ins) => (level <= ins.log_level.load(Ordering::Relaxed)) as c_int,
        None => 0,
    }
}

unsafe extern "C" fn api_input_get_property(
    _key: *const c_char,
    _i_ins: *mut c_void,
) -> *const c_char {
    violation("input_get_property called by an output plugin".into());
    ptr::null()
}

unsafe extern "C" fn api_custom_get_property(
    _key: *const c_char,
    _c_ins: *mut c_void,
) -> *const c_char {
    violation("custom_get_property called by an output plugin".into());
    ptr::null()
}

unsafe extern "C" fn api_input_get_cmt_instance(_i_ins: *mut c_void) -> *mut c_void {
    violation("input_get_cmt_instance called by an output plugin".into());
    ptr::null_mut()
}

unsafe extern "C" fn api_input_log_check(_i_ins: *mut c_void, _level: c_int) -> c_int {
    violation("input_log_check called by an output plugin".into());
    0
}

unsafe extern "C" fn api_custom_log_check(_c_ins: *mut c_void, _level: c_int) -> c_int {
    violation("custom_log_check called by an output plugin".into());
    0
}

/// The `struct flb_api` the host gives every plugin (a copy; the function
/// pointers are the host's, usable from tests).
pub fn host_api() -> FlbApi {
    FlbApi {
        output_get_property: Some(api_output_get_property),
        input_get_property: Some(api_input_get_property),
        output_get_cmt_instance: Some(api_output_get_cmt_instance),
        input_get_cmt_instance: Some(api_input_get_cmt_instance),
        log_print: Some(flb_host_log_print),
        input_log_check: Some(api_input_log_check),
        output_log_check: Some(api_output_log_check),
        custom_get_property: Some(api_custom_get_property),
        custom_log_check: Some(api_custom_log_check),
    }
}

// ---------------------------------------------------------------------------
// Init
// ---------------------------------------------------------------------------

/// Per-instance options of [`Plugin::init_with`].
#[derive(Debug, Clone)]
pub struct InitOptions {
    /// Call `FLBPluginOutputPreRun(enable_hot_reload)` right after a
    /// successful `FLBPluginInit` (Fluent Bit calls it once all outputs are
    /// initialised). Default: true.
    pub pre_run: bool,
    /// What `output_get_cmt_instance(o_ins)` returns (a `struct cmt *`).
    /// Default NULL. Real Fluent Bit returns the instance's cmetrics context.
    pub cmt_instance: *mut c_void,
}

impl Default for InitOptions {
    fn default() -> Self {
        InitOptions {
            pre_run: true,
            cmt_instance: ptr::null_mut(),
        }
    }
}

/// A raw pointer that may cross to the engine or a flush thread.
struct Ptr<T>(*mut T);
impl<T> Clone for Ptr<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Ptr<T> {}
// SAFETY: only used to move pointers to threads that the sender waits for;
// the pointees outlive those threads' use of them.
unsafe impl<T> Send for Ptr<T> {}
// SAFETY: as above.
unsafe impl<T> Sync for Ptr<T> {}
impl<T> Ptr<T> {
    fn get(self) -> *mut T {
        self.0
    }
}

impl Plugin {
    /// Creates and initialises one output instance with the given
    /// `[OUTPUT]` properties (and default [`InitOptions`]).
    ///
    /// Core keys (`match`, `workers`, `retry_limit`, `log_level`, `alias`,
    /// `host`, `port`, `tls*`, `net.*`, ...) are consumed as Fluent Bit does
    /// and are not visible through `output_get_property`; `name` is ignored.
    /// `${VAR}` in values is expanded from the environment. Then, on the
    /// engine thread: `FLBPluginInit(p)` (and `FLBPluginOutputPreRun`).
    pub fn init(&self, props: &[(&str, &str)]) -> Result<Instance, HostError> {
        self.init_with(props, &InitOptions::default())
    }

    /// [`Plugin::init`] with explicit options.
    pub fn init_with(
        &self,
        props: &[(&str, &str)],
        opts: &InitOptions,
    ) -> Result<Instance, HostError> {
        let inner = &self.inner;
        let id = inner.next_id.fetch_add(1, Ordering::SeqCst);
        let name = format!("{}.{}", inner.name, id);
        let ins = OutputInstance::new(
            props,
            inner.config.log_level,
            self.flags(),
            opts.cmt_instance,
        )?;
        let o_ins = Box::into_raw(Box::new(ins));
        let ctx = Box::into_raw(Box::new(FlbPluginProxyContext {
            remote_context: ptr::null_mut(),
            proxy: inner.proxy,
        }));
        live_write().push(o_ins as usize);

        let (go, proxy, api, o, c) = (
            Ptr(inner.go),
            Ptr(inner.proxy),
            Ptr(inner.api),
            Ptr(o_ins.cast::<c_void>()),
            Ptr(ctx),
        );
        let init = inner.syms.init;
        let ret = inner.engine.run(move || {
            let (go, proxy) = (go.get(), proxy.get());
            // SAFETY: `go` and `proxy` are the plugin's live structures, only
            // written here on the engine thread; `o_ins` and `ctx` are live.
            // proxy_go_output_init: set api, o_ins and context, then call
            // FLBPluginInit with the (shared) flbgo_output_plugin.
            unsafe {
                (*proxy).instance = o.get();
                (*go).api = api.get();
                (*go).o_ins = o.get();
                (*go).context = c.get();
                init(go)
            }
        });
        let fail = |e: HostError| {
            live_write().retain(|&a| a != o_ins as usize);
            // SAFETY: both boxes came from Box::into_raw above; the plugin
            // failed its init and must not use them any more.
            unsafe {
                drop(Box::from_raw(o_ins));
                drop(Box::from_raw(ctx));
            }
            Err(e)
        };
        let ret = match ret {
            Ok(r) => r,
            Err(e) => return fail(e),
        };
        if ret <= 0 {
            return fail(HostError::InitFailed(ret));
        }
        inner.live_instances.fetch_add(1, Ordering::SeqCst);
        let instance = Instance {
            inner: Arc::clone(inner),
            o_ins,
            ctx,
            id,
            name,
            exited: false,
        };
        if opts.pre_run {
            instance.pre_run();
        }
        Ok(instance)
    }
}

// ---------------------------------------------------------------------------
// Flush
// ---------------------------------------------------------------------------

/// `struct flb_host_flush_call` of `csrc/flb_host.c`.
#[repr(C)]
struct FlushCall {
    cb_flush_ctx: Option<FlushCtxFn>,
    cb_flush: Option<FlushFn>,
    proxy_context: *mut *mut c_void,
    data: *const c_void,
    size: usize,
    tag: *const c_char,
    tag_len: usize,
    copy_tag: c_int,
    ret: c_int,
}

extern "C" {
    fn flb_host_proxy_flush(c: *mut FlushCall) -> c_int;
    fn flb_host_flush_on_stack(
        stack_lo: *mut c_void,
        stack_size: usize,
        c: *mut FlushCall,
    ) -> c_int;
}

/// Where a flush runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushOn {
    /// A freshly spawned output worker thread (`workers N`), named
    /// `flb-out-<instance name>-w<N>` as in Fluent Bit (the kernel keeps the
    /// first 15 bytes, e.g. `flb-out-firehos`).
    Worker(usize),
    /// The plugin's persistent engine thread `flb-pipeline` (`workers 0`):
    /// flushes there run one at a time, after any queued init/exit.
    Engine,
}

/// Which stack a flush runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushStack {
    /// Directly on the thread's stack. For [`FlushOn::Worker`] the thread is
    /// spawned with a `stack_size`-byte stack (glibc carves TLS and the
    /// thread descriptor out of it, so slightly less is usable); for
    /// [`FlushOn::Engine`] it is the engine thread's 8 MiB stack.
    Thread,
    /// Inside a coroutine with exactly `stack_size` bytes of stack and no
    /// guard page, as Fluent Bit runs every flush (libco). The report then
    /// carries the stack high-water mark and overflow detection.
    Coroutine,
}

/// How [`Instance::flush_with`] runs a flush.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlushOptions {
    /// Thread.
    pub on: FlushOn,
    /// Stack.
    pub stack: FlushStack,
    /// Stack size; `None` = [`crate::HostConfig::coro_stack_size`] (64 KiB).
    pub stack_size: Option<usize>,
}

impl FlushOptions {
    /// Worker thread 0 with a 64 KiB thread stack ([`Instance::flush`]).
    pub fn worker_thread() -> Self {
        FlushOptions {
            on: FlushOn::Worker(0),
            stack: FlushStack::Thread,
            stack_size: None,
        }
    }

    /// Worker thread 0, inside a 64 KiB coroutine ([`Instance::flush_coro`]).
    pub fn worker_coroutine() -> Self {
        FlushOptions {
            on: FlushOn::Worker(0),
            stack: FlushStack::Coroutine,
            stack_size: None,
        }
    }

    /// Engine thread, inside a 64 KiB coroutine
    /// ([`Instance::flush_on_engine_thread`]).
    pub fn engine() -> Self {
        FlushOptions {
            on: FlushOn::Engine,
            stack: FlushStack::Coroutine,
            stack_size: None,
        }
    }
}

impl Default for FlushOptions {
    fn default() -> Self {
        FlushOptions::worker_thread()
    }
}

/// Result of one flush.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlushReport {
    /// What `FLBPluginFlushCtx` returned (not normalised; see
    /// [`FlushReport::fluent_bit_result`]).
    pub code: i32,
    /// Coroutine flushes: bytes of the stack touched (from its top down to
    /// the lowest modified word). `None` for [`FlushStack::Thread`].
    pub stack_used_bytes: Option<usize>,
    /// Size of the stack the flush ran on.
    pub stack_size: usize,
    /// Coroutine flushes: the flush wrote below the stack (in Fluent Bit it
    /// would have corrupted memory). `stack_used_bytes` then exceeds
    /// `stack_size`.
    pub stack_overflowed: bool,
    /// The thread name as the kernel reports it (at most 15 bytes).
    pub thread_name: String,
}

impl FlushReport {
    /// What Fluent Bit makes of `code`: `FLB_OK`, `FLB_RETRY`, or `FLB_ERROR`.
    pub fn fluent_bit_result(&self) -> i32 {
        normalize_flush_code(self.code)
    }
}

fn current_os_thread_name() -> String {
    let mut buf = [0u8; 32];
    // SAFETY: PR_GET_NAME writes at most 16 bytes into the buffer.
    unsafe { libc::prctl(libc::PR_GET_NAME, buf.as_mut_ptr()) };
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// Runs `call` on the current thread, on a coroutine stack or directly.
fn run_call(mut call: FlushCall, stack: FlushStack, stack_size: usize) -> FlushReport {
    let thread_name = current_os_thread_name();
    match stack {
        FlushStack::Thread => {
            // SAFETY: `call` is fully initialised; its pointers are valid for
            // the duration of the call (the caller waits).
            let code = unsafe { flb_host_proxy_flush(&mut call) };
            FlushReport {
                code,
                stack_used_bytes: None,
                stack_size,
                stack_overflowed: false,
                thread_name,
            }
        }
        FlushStack::Coroutine => {
            let coro = CoroStack::new(stack_size).expect("cannot map a coroutine stack");
            let (lo, size) = coro.stack();
            // SAFETY: `lo..lo+size` is a writable stack owned by `coro`, which
            // outlives the call; `call` is valid as above.
            let rc = unsafe { flb_host_flush_on_stack(lo.cast(), size, &mut call) };
            assert_eq!(rc, 0, "makecontext/swapcontext failed");
            let (used, overflowed) = coro.measure();
            FlushReport {
                code: call.ret,
                stack_used_bytes: Some(used),
                stack_size: size,
                stack_overflowed: overflowed,
                thread_name,
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Instance
// ---------------------------------------------------------------------------

/// One initialised output instance (one `[OUTPUT]` section).
///
/// `Send + Sync`: any number of threads may flush it at once, as Fluent Bit's
/// workers do. Dropping it without [`Instance::exit`] runs the exit sequence.
pub struct Instance {
    inner: Arc<PluginInner>,
    o_ins: *mut OutputInstance,
    ctx: *mut FlbPluginProxyContext,
    id: usize,
    name: String,
    exited: bool,
}

// SAFETY: `o_ins` and `ctx` point to heap blocks owned by the instance and
// freed only in `exit` (which takes `&mut self`/`self`, so no shared borrow is
// alive). The host only reads them through atomics or after init; concurrent
// use by the plugin is the plugin's contract with Fluent Bit.
unsafe impl Send for Instance {}
// SAFETY: see `Send`.
unsafe impl Sync for Instance {}

impl std::fmt::Debug for Instance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Instance")
            .field("name", &self.name)
            .field("o_ins", &self.o_ins)
            .field("remote_context", &self.remote_context())
            .finish_non_exhaustive()
    }
}

impl Instance {
    fn ins(&self) -> &OutputInstance {
        // SAFETY: `o_ins` is live until `exit`, which needs `&mut self`.
        unsafe { &*self.o_ins }
    }

    /// Instance name, `<plugin name>.<id>` (e.g. `firehose_fanout.0`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Instance id (0, 1, ... per loaded plugin, like per configuration).
    pub fn id(&self) -> usize {
        self.id
    }

    /// The name of worker thread `worker` before the kernel truncates it:
    /// `flb-out-<instance name>-w<worker>`.
    pub fn worker_thread_name(&self, worker: usize) -> String {
        format!("flb-out-{}-w{}", self.name, worker)
    }

    /// The opaque `o_ins` pointer the plugin received.
    pub fn o_ins(&self) -> *mut c_void {
        self.o_ins.cast()
    }

    /// `context->remote_context`, as set by the plugin (read now, as Fluent
    /// Bit reads it at every flush).
    pub fn remote_context(&self) -> *mut c_void {
        // SAFETY: `ctx` is live; the plugin may write the field from its init
        // only, a volatile read observes the current value.
        unsafe { ptr::read_volatile(ptr::addr_of!((*self.ctx).remote_context)) }
    }

    /// `output_get_property(key, o_ins)` through the host's `struct flb_api`,
    /// exactly what the plugin sees (`None` for NULL).
    pub fn property(&self, key: &str) -> Option<String> {
        let p = self.property_ptr(key);
        if p.is_null() {
            None
        } else {
            // SAFETY: non-NULL results point into the instance's properties.
            Some(unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
        }
    }

    /// The raw pointer `output_get_property` returns (stable for the life of
    /// the instance).
    pub fn property_ptr(&self, key: &str) -> *const c_char {
        let Ok(k) = CString::new(key) else {
            return ptr::null();
        };
        // SAFETY: host function called with a valid key and live o_ins.
        unsafe { api_output_get_property(k.as_ptr(), self.o_ins()) }
    }

    /// Core properties Fluent Bit consumed (not visible to the plugin), as given.
    pub fn core_properties(&self) -> Vec<(String, String)> {
        self.ins().core.clone()
    }

    /// `output_log_check(o_ins, level)` through the host's API.
    pub fn log_check(&self, level: i32) -> bool {
        // SAFETY: host function called with a live o_ins.
        unsafe { api_output_log_check(self.o_ins(), level) == 1 }
    }

    /// The instance's log level (its `log_level` property, or the service's).
    pub fn log_level(&self) -> i32 {
        self.ins().log_level.load(Ordering::Relaxed)
    }

    /// Changes the instance's log level.
    pub fn set_log_level(&self, level: i32) {
        self.ins().log_level.store(level, Ordering::Relaxed);
    }

    /// What `output_get_cmt_instance(o_ins)` returns from now on.
    pub fn set_cmt_instance(&self, cmt: *mut c_void) {
        self.ins().cmt.store(cmt, Ordering::SeqCst);
    }

    /// What `output_get_cmt_instance(o_ins)` returns.
    pub fn cmt_instance(&self) -> *mut c_void {
        self.ins().cmt.load(Ordering::SeqCst)
    }

    /// `FLBPluginOutputPreRun(enable_hot_reload)` on the engine thread, if
    /// exported (Fluent Bit ignores its result). [`Plugin::init`] already
    /// calls it unless [`InitOptions::pre_run`] is false.
    pub fn pre_run(&self) -> Option<i32> {
        let f = self.inner.syms.pre_run?;
        let arg = self.inner.config.enable_hot_reload as c_int;
        // SAFETY: the plugin's exported FLBPluginOutputPreRun(int).
        self.inner.engine.run(move || unsafe { f(arg) }).ok()
    }

    fn call(
        &self,
        data: *const u8,
        size: usize,
        tag: *const c_char,
        tag_len: usize,
        copy: bool,
    ) -> FlushCall {
        FlushCall {
            cb_flush_ctx: self.inner.syms.flush_ctx,
            cb_flush: self.inner.syms.flush,
            // SAFETY: field address inside the live proxy context.
            proxy_context: unsafe { ptr::addr_of_mut!((*self.ctx).remote_context) },
            data: data.cast(),
            size,
            tag,
            tag_len,
            copy_tag: copy as c_int,
            ret: -1,
        }
    }

    fn dispatch(&self, call: FlushCall, opts: &FlushOptions) -> FlushReport {
        struct SendCall(FlushCall);
        // SAFETY: the call's pointers stay valid until the thread that runs
        // it is joined / the engine job completed, which we wait for.
        unsafe impl Send for SendCall {}
        impl SendCall {
            fn into_inner(self) -> FlushCall {
                self.0
            }
        }
        let call = SendCall(call);
        let stack = opts.stack;
        let stack_size = opts.stack_size.unwrap_or(self.inner.config.coro_stack_size);
        match opts.on {
            FlushOn::Worker(worker) => {
                let builder = std::thread::Builder::new().name(self.worker_thread_name(worker));
                let builder = match stack {
                    FlushStack::Thread => builder.stack_size(stack_size),
                    FlushStack::Coroutine => builder.stack_size(2 * 1024 * 1024),
                };
                std::thread::scope(|s| {
                    builder
                        .spawn_scoped(s, move || run_call(call.into_inner(), stack, stack_size))
                        .expect("cannot spawn a flush thread")
                        .join()
                        .expect("the flush thread panicked")
                })
            }
            FlushOn::Engine => self
                .inner
                .engine
                .run(move || run_call(call.into_inner(), stack, stack_size))
                .expect("engine thread failure"),
        }
    }

    /// Flushes `data` with `tag` on a fresh worker thread whose stack is
    /// 64 KiB ([`crate::HostConfig::coro_stack_size`]), like
    /// `proxy_go_output_flush`: the tag is copied into a malloc'd
    /// NUL-terminated buffer, `FLBPluginFlushCtx(remote_context, data, size,
    /// buf)` (or `FLBPluginFlush`) runs, the buffer is freed. Returns the
    /// plugin's return value.
    pub fn flush(&self, data: &[u8], tag: &str) -> i32 {
        self.flush_with(data, tag, &FlushOptions::worker_thread())
            .code
    }

    /// Flushes on the plugin's engine thread `flb-pipeline` (`workers 0`),
    /// inside a 64 KiB coroutine.
    pub fn flush_on_engine_thread(&self, data: &[u8], tag: &str) -> i32 {
        self.flush_with(data, tag, &FlushOptions::engine()).code
    }

    /// Flushes on a fresh worker thread inside a 64 KiB coroutine without a
    /// guard page (Fluent Bit's real setting) and reports the stack
    /// high-water mark.
    pub fn flush_coro(&self, data: &[u8], tag: &str) -> FlushReport {
        self.flush_with(data, tag, &FlushOptions::worker_coroutine())
    }

    /// Flushes with explicit [`FlushOptions`].
    ///
    /// # Panics
    /// If the flush thread or coroutine stack cannot be created.
    pub fn flush_with(&self, data: &[u8], tag: &str, opts: &FlushOptions) -> FlushReport {
        let call = self.call(
            data.as_ptr(),
            data.len(),
            tag.as_ptr().cast(),
            tag.len(),
            true,
        );
        self.dispatch(call, opts)
    }

    /// Flushes raw pointers, passed to the plugin unchanged (no tag copy), on
    /// a fresh 64 KiB worker thread: for hostile-input tests with NULL data,
    /// a NULL tag or size 0 (Fluent Bit itself never passes NULL).
    ///
    /// # Safety
    /// Non-NULL `data` must point to `size` readable bytes and non-NULL `tag`
    /// to a NUL-terminated string, both valid during the call.
    pub unsafe fn flush_raw(&self, data: *const u8, size: usize, tag: *const c_char) -> i32 {
        // SAFETY: forwarded contract.
        unsafe { self.flush_raw_with(data, size, tag, &FlushOptions::worker_thread()) }.code
    }

    /// [`Instance::flush_raw`] with explicit [`FlushOptions`].
    ///
    /// # Safety
    /// As [`Instance::flush_raw`].
    pub unsafe fn flush_raw_with(
        &self,
        data: *const u8,
        size: usize,
        tag: *const c_char,
        opts: &FlushOptions,
    ) -> FlushReport {
        let call = self.call(data, size, tag, 0, false);
        self.dispatch(call, opts)
    }

    fn do_exit(&mut self, by_hot_reload: bool) -> i32 {
        if self.exited {
            return 0;
        }
        self.exited = true;
        let syms = &self.inner.syms;
        let (pre_exit, exit_ctx, exit) = (syms.pre_exit, syms.exit_ctx, syms.exit);
        let ctx = Ptr(self.ctx);
        let code = self.inner.engine.run(move || {
            // SAFETY: `ctx` is live until after this job completed; the
            // plugin's exported exit entry points are called as Fluent Bit
            // does (flb_proxy_output_cb_exit + proxy_go_output_destroy).
            unsafe {
                if let Some(pre_exit) = pre_exit {
                    pre_exit(by_hot_reload as c_int);
                }
                if let Some(exit_ctx) = exit_ctx {
                    exit_ctx((*ctx.get()).remote_context)
                } else if let Some(exit) = exit {
                    exit()
                } else {
                    0
                }
            }
        });
        let code = code.unwrap_or_else(|e| {
            eprintln!("[flb-host] exit of {}: {e}", self.name);
            -1
        });
        live_write().retain(|&a| a != self.o_ins as usize);
        // SAFETY: the exit call returned; the blocks came from Box::into_raw
        // in init_with and are freed once (guarded by `exited`).
        unsafe {
            drop(Box::from_raw(self.o_ins));
            drop(Box::from_raw(self.ctx));
        }
        self.inner.live_instances.fetch_sub(1, Ordering::SeqCst);
        code
    }

    /// Shuts the instance down on the engine thread:
    /// `FLBPluginOutputPreExit(0)` if exported, then
    /// `FLBPluginExitCtx(remote_context)` (or `FLBPluginExit()`). Host
    /// structures are freed only after that returns; later API calls with
    /// this `o_ins` are reported as [`crate::violations`]. Returns the exit
    /// callback's value (Fluent Bit ignores it).
    pub fn exit(self) -> i32 {
        self.exit_with(false)
    }

    /// [`Instance::exit`] with `FLBPluginOutputPreExit(by_hot_reload)`.
    pub fn exit_with(mut self, by_hot_reload: bool) -> i32 {
        self.do_exit(by_hot_reload)
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.do_exit(false);
    }
}
