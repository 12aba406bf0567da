//! Loading, registering and unloading a plugin (`flb_plugin_proxy_create`,
//! `flb_plugin_proxy_register`, `proxy_go_output_register`,
//! `flb_proxy_output_cb_destroy` in Fluent Bit).

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use crate::abi::*;
use crate::engine::Engine;
use crate::instance::host_api;
use crate::HostError;

/// Default coroutine stack size of Fluent Bit v5 on x86_64
/// (`FLB_CORO_STACK_SIZE_BYTE`, at least 64 KiB).
pub const DEFAULT_CORO_STACK_SIZE: usize = 64 * 1024;

/// Process-wide ("service") settings of the simulated Fluent Bit.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// Service `log_level`: the default of every instance without its own
    /// `log_level` property. Fluent Bit's default is info (3).
    pub log_level: i32,
    /// Argument of `FLBPluginPreRegister` (`config->hot_reloading`): true
    /// when the plugin is loaded again by a hot reload.
    pub hot_reloading: bool,
    /// Argument of `FLBPluginOutputPreRun` (`config->enable_hot_reload`,
    /// i.e. `hot_reload on` in the service section).
    pub enable_hot_reload: bool,
    /// Stack size of the coroutines flushes run in (`coro_stack_size`);
    /// also the stack size of the worker threads of [`crate::Instance::flush`].
    pub coro_stack_size: usize,
}

impl Default for HostConfig {
    fn default() -> Self {
        HostConfig {
            log_level: FLB_LOG_INFO,
            hot_reloading: false,
            enable_hot_reload: false,
            coro_stack_size: DEFAULT_CORO_STACK_SIZE,
        }
    }
}

pub(crate) struct Symbols {
    pub(crate) init: InitFn,
    pub(crate) flush: Option<FlushFn>,
    pub(crate) flush_ctx: Option<FlushCtxFn>,
    pub(crate) exit: Option<ExitFn>,
    pub(crate) exit_ctx: Option<ExitCtxFn>,
    pub(crate) pre_run: Option<IntIntFn>,
    pub(crate) pre_exit: Option<PreExitFn>,
    pub(crate) unregister: Option<UnregisterFn>,
}

/// Shared state of one loaded plugin; instances keep it alive.
pub(crate) struct PluginInner {
    pub(crate) path: PathBuf,
    handle: *mut c_void,
    pub(crate) def: *mut FlbPluginProxyDef,
    pub(crate) api: *mut FlbApi,
    pub(crate) proxy: *mut FlbPluginProxy,
    pub(crate) go: *mut FlbgoOutputPlugin,
    pub(crate) syms: Symbols,
    pub(crate) engine: Engine,
    pub(crate) config: HostConfig,
    pub(crate) name: String,
    description: String,
    proxy_kind: i32,
    plugin_type: i32,
    event_type: i32,
    flags: i32,
    pub(crate) next_id: AtomicUsize,
    pub(crate) live_instances: AtomicUsize,
    destroyed: AtomicBool,
}

// SAFETY: the raw pointers are owned by PluginInner and point to heap blocks
// that live until `destroy`. The C structures are only written on the engine
// thread (one init at a time) and read by the plugin, which must itself be
// thread-safe; the Rust fields are immutable or atomic.
unsafe impl Send for PluginInner {}
// SAFETY: see `Send`.
unsafe impl Sync for PluginInner {}

/// Looks a symbol up like `flb_plugin_proxy_symbol`.
///
/// # Safety
/// `handle` is a live dlopen handle.
unsafe fn symbol(handle: *mut c_void, name: &CStr) -> Option<*mut c_void> {
    // SAFETY: dlerror/dlsym on a live handle with a NUL-terminated name.
    unsafe {
        libc::dlerror();
        let s = libc::dlsym(handle, name.as_ptr());
        if !libc::dlerror().is_null() || s.is_null() {
            None
        } else {
            Some(s)
        }
    }
}

fn dlerror_string() -> String {
    // SAFETY: dlerror returns NULL or a NUL-terminated thread-local string.
    let e = unsafe { libc::dlerror() };
    if e.is_null() {
        "unknown error".to_string()
    } else {
        // SAFETY: non-NULL dlerror result is a valid C string.
        unsafe { CStr::from_ptr(e) }.to_string_lossy().into_owned()
    }
}

fn c_string(p: *const c_char) -> Option<String> {
    if p.is_null() {
        None
    } else {
        // SAFETY: the plugin stores NUL-terminated strings in def (ABI contract).
        Some(unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
    }
}

/// Closes a dlopen handle on early return.
struct HandleGuard(*mut c_void);

impl Drop for HandleGuard {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: a live handle from dlopen, closed once.
            unsafe { libc::dlclose(self.0) };
        }
    }
}

impl PluginInner {
    fn load(path: &Path, config: HostConfig) -> Result<PluginInner, HostError> {
        crate::log::install_sink();
        let cpath = CString::new(path.as_os_str().as_bytes())
            .map_err(|_| HostError::InvalidString(path.display().to_string()))?;
        // SAFETY: dlopen with a NUL-terminated path.
        let handle = unsafe { libc::dlopen(cpath.as_ptr(), libc::RTLD_LAZY) };
        if handle.is_null() {
            return Err(HostError::Dlopen {
                path: path.display().to_string(),
                message: dlerror_string(),
            });
        }
        let mut guard = HandleGuard(handle);

        // SAFETY: `handle` is a live dlopen handle.
        if let Some(pre) = unsafe { symbol(handle, c"FLBPluginPreRegister") } {
            // SAFETY: FLBPluginPreRegister has the signature int(int).
            let pre: IntIntFn = unsafe { std::mem::transmute::<*mut c_void, IntIntFn>(pre) };
            // SAFETY: calling the plugin's exported entry point.
            let ret = unsafe { pre(config.hot_reloading as c_int) };
            if ret == -1 {
                return Err(HostError::PreRegisterFailed);
            }
        }
        // SAFETY: `handle` is a live dlopen handle.
        let register = unsafe { symbol(handle, c"FLBPluginRegister") }
            .ok_or(HostError::MissingSymbol("FLBPluginRegister"))?;
        // SAFETY: FLBPluginRegister has the signature int(struct flb_plugin_proxy_def *).
        let register: RegisterFn =
            unsafe { std::mem::transmute::<*mut c_void, RegisterFn>(register) };

        // flb_calloc'd definition with only `type` set.
        let def = Box::into_raw(Box::new(FlbPluginProxyDef {
            type_: FLB_PROXY_OUTPUT_PLUGIN,
            proxy: 0,
            flags: 0,
            name: ptr::null_mut(),
            description: ptr::null_mut(),
            event_type: 0,
            config_map: ptr::null_mut(),
        }));
        // SAFETY: `def` is a valid, exclusively owned definition.
        let ret = unsafe { register(def) };
        // SAFETY: `def` is still ours; the plugin filled it.
        let d = unsafe { &*def };
        let (proxy_kind, plugin_type, event_type, flags) =
            (d.proxy, d.type_, d.event_type, d.flags);
        let name = c_string(d.name);
        let description = c_string(d.description).unwrap_or_default();
        let fail = |e: HostError| {
            // SAFETY: `def` came from Box::into_raw above and is not used
            // after this (the plugin must not keep it after a failed load).
            drop(unsafe { Box::from_raw(def) });
            Err(e)
        };
        if ret == -1 {
            return fail(HostError::RegisterFailed);
        }
        if proxy_kind != FLB_PROXY_GOLANG || plugin_type != FLB_PROXY_OUTPUT_PLUGIN {
            return fail(HostError::Unsupported {
                proxy: proxy_kind,
                plugin_type,
            });
        }
        let Some(name) = name else {
            return fail(HostError::NoName);
        };

        // SAFETY: `handle` is a live dlopen handle for all the look-ups below.
        let sym = |n: &CStr| unsafe { symbol(handle, n) };
        let Some(init) = sym(c"FLBPluginInit") else {
            return fail(HostError::MissingSymbol("FLBPluginInit"));
        };
        // SAFETY: each exported symbol has the C signature the ABI gives it,
        // so transmuting its address to that function pointer type is sound.
        let syms = unsafe {
            Symbols {
                init: std::mem::transmute::<*mut c_void, InitFn>(init),
                flush: sym(c"FLBPluginFlush")
                    .map(|p| std::mem::transmute::<*mut c_void, FlushFn>(p)),
                flush_ctx: sym(c"FLBPluginFlushCtx")
                    .map(|p| std::mem::transmute::<*mut c_void, FlushCtxFn>(p)),
                exit: sym(c"FLBPluginExit").map(|p| std::mem::transmute::<*mut c_void, ExitFn>(p)),
                exit_ctx: sym(c"FLBPluginExitCtx")
                    .map(|p| std::mem::transmute::<*mut c_void, ExitCtxFn>(p)),
                pre_run: sym(c"FLBPluginOutputPreRun")
                    .map(|p| std::mem::transmute::<*mut c_void, IntIntFn>(p)),
                pre_exit: sym(c"FLBPluginOutputPreExit")
                    .map(|p| std::mem::transmute::<*mut c_void, PreExitFn>(p)),
                unregister: sym(c"FLBPluginUnregister")
                    .map(|p| std::mem::transmute::<*mut c_void, UnregisterFn>(p)),
            }
        };
        if syms.flush.is_none() && syms.flush_ctx.is_none() {
            // Fluent Bit would call a NULL pointer at the first flush.
            return fail(HostError::MissingSymbol(
                "FLBPluginFlushCtx / FLBPluginFlush",
            ));
        }
        let engine = match Engine::start() {
            Ok(e) => e,
            Err(e) => return fail(e),
        };

        let api = Box::into_raw(Box::new(host_api()));
        let go_name = CString::new(name.as_bytes()).unwrap_or_default().into_raw();
        let go = Box::into_raw(Box::new(FlbgoOutputPlugin {
            name: go_name,
            api,
            o_ins: ptr::null_mut(),
            context: ptr::null_mut(),
            cb_init: Some(syms.init),
            cb_flush: syms.flush,
            cb_flush_ctx: syms.flush_ctx,
            cb_exit: syms.exit,
            cb_exit_ctx: syms.exit_ctx,
        }));
        let proxy = Box::into_raw(Box::new(FlbPluginProxy {
            def,
            api,
            instance: ptr::null_mut(),
            dso_handler: handle,
            data: go.cast(),
            head_prev: ptr::null_mut(),
            head_next: ptr::null_mut(),
        }));
        guard.0 = ptr::null_mut();
        Ok(PluginInner {
            path: path.to_path_buf(),
            handle,
            def,
            api,
            proxy,
            go,
            syms,
            engine,
            config,
            name,
            description,
            proxy_kind,
            plugin_type,
            event_type,
            flags,
            next_id: AtomicUsize::new(0),
            live_instances: AtomicUsize::new(0),
            destroyed: AtomicBool::new(false),
        })
    }

    /// `flb_proxy_output_cb_destroy` + `flb_plugin_proxy_destroy`, after the
    /// engine thread stopped. Returns the dlclose result.
    fn destroy(&self) -> Result<(), HostError> {
        if self.destroyed.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        // Joined first: its thread-local destructors (the plugin's too) must
        // run while the library is still mapped.
        self.engine.shutdown();
        if let Some(unregister) = self.syms.unregister {
            // SAFETY: `def` is the definition the plugin filled at register.
            unsafe { unregister(self.def) };
        }
        // Fluent Bit never frees def->name / def->description: they belong
        // to the plugin (the Go SDK frees them in FLBPluginUnregister).
        // SAFETY: these blocks came from Box::into_raw / CString::into_raw in
        // `load` and are freed exactly once, here; no instance is left.
        unsafe {
            let go = Box::from_raw(self.go);
            drop(CString::from_raw(go.name));
            drop(go);
            drop(Box::from_raw(self.proxy));
            drop(Box::from_raw(self.api));
            drop(Box::from_raw(self.def));
        }
        // SAFETY: the handle from dlopen, closed once.
        let rc = unsafe { libc::dlclose(self.handle) };
        if rc != 0 {
            return Err(HostError::Dlclose(dlerror_string()));
        }
        Ok(())
    }
}

impl Drop for PluginInner {
    fn drop(&mut self) {
        if let Err(e) = self.destroy() {
            eprintln!("[flb-host] unloading {}: {e}", self.path.display());
        }
    }
}

/// A loaded Fluent Bit external output plugin (one `dlopen` handle and one
/// registration, like one `-e plugin.so` of one Fluent Bit configuration).
///
/// Loading the same path twice gives two registrations sharing one mapped
/// library (as a Fluent Bit hot reload does). Dropping the `Plugin` unloads it
/// once its last [`crate::Instance`] is gone: `FLBPluginUnregister(def)` then
/// `dlclose`.
pub struct Plugin {
    pub(crate) inner: Arc<PluginInner>,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("path", &self.inner.path)
            .field("name", &self.inner.name)
            .finish_non_exhaustive()
    }
}

impl Plugin {
    /// Loads the plugin at `path` with the default [`HostConfig`]:
    /// `dlopen(path, RTLD_LAZY)`, `FLBPluginPreRegister(0)` if exported,
    /// `FLBPluginRegister(def)` with a zeroed definition whose `type` is
    /// `FLB_PROXY_OUTPUT_PLUGIN`, then the symbol look-ups Fluent Bit does.
    pub fn load(path: impl AsRef<Path>) -> Result<Plugin, HostError> {
        Plugin::load_with(path, HostConfig::default())
    }

    /// [`Plugin::load`] with explicit service settings.
    pub fn load_with(path: impl AsRef<Path>, config: HostConfig) -> Result<Plugin, HostError> {
        Ok(Plugin {
            inner: Arc::new(PluginInner::load(path.as_ref(), config)?),
        })
    }

    /// The path given to `dlopen`.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// `def->name` as registered.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// `def->description` (empty when NULL).
    pub fn description(&self) -> &str {
        &self.inner.description
    }

    /// `def->proxy` (always `FLB_PROXY_GOLANG` = 11 for a loaded plugin).
    pub fn proxy_kind(&self) -> i32 {
        self.inner.proxy_kind
    }

    /// `def->type` (always `FLB_PROXY_OUTPUT_PLUGIN` = 2 for a loaded plugin).
    pub fn plugin_type(&self) -> i32 {
        self.inner.plugin_type
    }

    /// `def->event_type` (0 means logs).
    pub fn event_type(&self) -> i32 {
        self.inner.event_type
    }

    /// `def->flags`.
    pub fn flags(&self) -> i32 {
        self.inner.flags
    }

    /// The service settings this plugin was loaded with.
    pub fn config(&self) -> &HostConfig {
        &self.inner.config
    }

    /// Whether the plugin exports `name`.
    pub fn has_symbol(&self, name: &str) -> bool {
        self.symbol(name).is_some()
    }

    /// Address of an exported symbol (for test-only exports of a plugin).
    pub fn symbol(&self, name: &str) -> Option<*mut c_void> {
        let name = CString::new(name).ok()?;
        // SAFETY: the handle is live while `self` exists.
        unsafe { symbol(self.inner.handle, &name) }
    }

    /// How many instances of this plugin are alive (not exited).
    pub fn live_instances(&self) -> usize {
        self.inner.live_instances.load(Ordering::SeqCst)
    }

    /// Unloads now: `FLBPluginUnregister(def)` if exported, then `dlclose`,
    /// returning an error if dlclose fails. If instances are still alive the
    /// plugin is unloaded when the last one is dropped and
    /// [`HostError::InstancesAlive`] is returned.
    pub fn unload(self) -> Result<(), HostError> {
        match Arc::try_unwrap(self.inner) {
            Ok(inner) => inner.destroy(),
            Err(arc) => {
                let n = Arc::strong_count(&arc) - 1;
                drop(arc);
                Err(HostError::InstancesAlive(n))
            }
        }
    }

    /// Whether the library at `path` is currently mapped in this process
    /// (`dlopen(path, RTLD_NOLOAD)`). After the last handle is closed a
    /// library may stay mapped, e.g. when it registered thread-local
    /// destructors that have not run yet.
    pub fn is_mapped(path: impl AsRef<Path>) -> bool {
        let Ok(c) = CString::new(path.as_ref().as_os_str().as_bytes()) else {
            return false;
        };
        // SAFETY: RTLD_NOLOAD never loads; a returned handle is closed again.
        unsafe {
            let h = libc::dlopen(c.as_ptr(), libc::RTLD_LAZY | libc::RTLD_NOLOAD);
            if h.is_null() {
                false
            } else {
                libc::dlclose(h);
                true
            }
        }
    }
}
