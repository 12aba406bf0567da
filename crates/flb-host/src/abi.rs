//! The C structures and constants of Fluent Bit's proxy ABI (LP64 layout),
//! as declared in `include/fluent-bit/flb_plugin_proxy.h`,
//! `include/fluent-bit/flb_api.h` and `src/proxy/go/go.h`.
//!
//! The host hands pointers to these structures to the plugin; their layout is
//! checked at compile time against the sizes and offsets of the C headers.

use std::ffi::{c_char, c_int, c_void};

/// `FLB_ERROR`: the chunk is dropped.
pub const FLB_ERROR: i32 = 0;
/// `FLB_OK`: the chunk is done.
pub const FLB_OK: i32 = 1;
/// `FLB_RETRY`: Fluent Bit re-schedules the same chunk later.
pub const FLB_RETRY: i32 = 2;

/// `FLB_PROXY_INPUT_PLUGIN`.
pub const FLB_PROXY_INPUT_PLUGIN: i32 = 1;
/// `FLB_PROXY_OUTPUT_PLUGIN`: the type Fluent Bit pre-fills before `FLBPluginRegister`.
pub const FLB_PROXY_OUTPUT_PLUGIN: i32 = 2;
/// `FLB_PROXY_CUSTOM_PLUGIN`.
pub const FLB_PROXY_CUSTOM_PLUGIN: i32 = 3;
/// `FLB_PROXY_GOLANG`: the only proxy kind Fluent Bit accepts.
pub const FLB_PROXY_GOLANG: i32 = 11;

/// Log level `off`.
pub const FLB_LOG_OFF: i32 = 0;
/// Log level `error`.
pub const FLB_LOG_ERROR: i32 = 1;
/// Log level `warn`.
pub const FLB_LOG_WARN: i32 = 2;
/// Log level `info` (Fluent Bit's default).
pub const FLB_LOG_INFO: i32 = 3;
/// Log level `debug`.
pub const FLB_LOG_DEBUG: i32 = 4;
/// Log level `trace`.
pub const FLB_LOG_TRACE: i32 = 5;

/// `struct flb_plugin_proxy_def`: zeroed by Fluent Bit except `type`, filled
/// by `FLBPluginRegister`.
#[repr(C)]
#[derive(Debug)]
pub struct FlbPluginProxyDef {
    /// `FLB_PROXY_OUTPUT_PLUGIN` (pre-filled by the host, as Fluent Bit does).
    pub type_: c_int,
    /// Proxy kind; must be `FLB_PROXY_GOLANG`.
    pub proxy: c_int,
    /// Output flags.
    pub flags: c_int,
    /// Plugin name (malloc'd and owned by the plugin).
    pub name: *mut c_char,
    /// Plugin description (malloc'd and owned by the plugin).
    pub description: *mut c_char,
    /// 0 = logs.
    pub event_type: c_int,
    /// `struct flb_config_map *`; should stay NULL.
    pub config_map: *mut c_void,
}

/// `output_get_property(key, o_ins)`.
pub type GetPropertyFn = unsafe extern "C" fn(*const c_char, *mut c_void) -> *const c_char;
/// `output_get_cmt_instance(o_ins)`.
pub type GetCmtFn = unsafe extern "C" fn(*mut c_void) -> *mut c_void;
/// `log_print(level, file, line, fmt, ...)`.
pub type LogPrintFn = unsafe extern "C" fn(c_int, *const c_char, c_int, *const c_char, ...);
/// `output_log_check(o_ins, level)`.
pub type LogCheckFn = unsafe extern "C" fn(*mut c_void, c_int) -> c_int;

/// `struct flb_api`.
#[repr(C)]
pub struct FlbApi {
    /// `output_get_property`.
    pub output_get_property: Option<GetPropertyFn>,
    /// `input_get_property`.
    pub input_get_property: Option<GetPropertyFn>,
    /// `output_get_cmt_instance`.
    pub output_get_cmt_instance: Option<GetCmtFn>,
    /// `input_get_cmt_instance`.
    pub input_get_cmt_instance: Option<GetCmtFn>,
    /// `log_print`.
    pub log_print: Option<LogPrintFn>,
    /// `input_log_check`.
    pub input_log_check: Option<LogCheckFn>,
    /// `output_log_check`.
    pub output_log_check: Option<LogCheckFn>,
    /// `custom_get_property`.
    pub custom_get_property: Option<GetPropertyFn>,
    /// `custom_log_check`.
    pub custom_log_check: Option<LogCheckFn>,
}

/// `struct flb_plugin_proxy` (Fluent Bit-private; `proxy_context.proxy` points to one).
#[repr(C)]
pub struct FlbPluginProxy {
    /// `def`.
    pub def: *mut FlbPluginProxyDef,
    /// `api`.
    pub api: *mut FlbApi,
    /// The output instance being initialised (set before each init).
    pub instance: *mut c_void,
    /// dlopen handle.
    pub dso_handler: *mut c_void,
    /// `struct flbgo_output_plugin *`.
    pub data: *mut c_void,
    /// `struct mk_list _head` (prev).
    pub head_prev: *mut c_void,
    /// `struct mk_list _head` (next).
    pub head_next: *mut c_void,
}

/// `struct flb_plugin_proxy_context`: one per output instance.
#[repr(C)]
pub struct FlbPluginProxyContext {
    /// Set by the plugin in `FLBPluginInit`; passed to `FLBPluginFlushCtx` / `FLBPluginExitCtx`.
    pub remote_context: *mut c_void,
    /// Fluent Bit-private.
    pub proxy: *mut FlbPluginProxy,
}

/// `FLBPluginInit`.
pub type InitFn = unsafe extern "C" fn(*mut FlbgoOutputPlugin) -> c_int;
/// `FLBPluginFlush`.
pub type FlushFn = unsafe extern "C" fn(*const c_void, usize, *const c_char) -> c_int;
/// `FLBPluginFlushCtx`.
pub type FlushCtxFn = unsafe extern "C" fn(*mut c_void, *const c_void, usize, *mut c_char) -> c_int;
/// `FLBPluginExit`.
pub type ExitFn = unsafe extern "C" fn() -> c_int;
/// `FLBPluginExitCtx`.
pub type ExitCtxFn = unsafe extern "C" fn(*mut c_void) -> c_int;
/// `FLBPluginPreRegister`, `FLBPluginOutputPreRun`.
pub type IntIntFn = unsafe extern "C" fn(c_int) -> c_int;
/// `FLBPluginOutputPreExit`.
pub type PreExitFn = unsafe extern "C" fn(c_int);
/// `FLBPluginRegister`.
pub type RegisterFn = unsafe extern "C" fn(*mut FlbPluginProxyDef) -> c_int;
/// `FLBPluginUnregister`.
pub type UnregisterFn = unsafe extern "C" fn(*mut FlbPluginProxyDef);

/// `struct flbgo_output_plugin`: what `FLBPluginInit` receives.
///
/// As in Fluent Bit there is ONE such structure per loaded plugin, not per
/// instance: every `FLBPluginInit` call receives the same pointer with `o_ins`
/// and `context` overwritten for the instance being initialised. A plugin
/// must copy `api`, `o_ins` and `context` out during `FLBPluginInit` and never
/// keep the `p` pointer.
#[repr(C)]
pub struct FlbgoOutputPlugin {
    /// Plugin name (host copy).
    pub name: *mut c_char,
    /// `struct flb_api *`.
    pub api: *mut FlbApi,
    /// Opaque `struct flb_output_instance *`.
    pub o_ins: *mut c_void,
    /// This instance's proxy context.
    pub context: *mut FlbPluginProxyContext,
    /// Fluent Bit-private from here on.
    pub cb_init: Option<InitFn>,
    /// Fluent Bit-private.
    pub cb_flush: Option<FlushFn>,
    /// Fluent Bit-private.
    pub cb_flush_ctx: Option<FlushCtxFn>,
    /// Fluent Bit-private.
    pub cb_exit: Option<ExitFn>,
    /// Fluent Bit-private.
    pub cb_exit_ctx: Option<ExitCtxFn>,
}

#[cfg(target_pointer_width = "64")]
const _: () = {
    use std::mem::{offset_of, size_of};
    assert!(size_of::<FlbPluginProxyDef>() == 48);
    assert!(offset_of!(FlbPluginProxyDef, proxy) == 4);
    assert!(offset_of!(FlbPluginProxyDef, flags) == 8);
    assert!(offset_of!(FlbPluginProxyDef, name) == 16);
    assert!(offset_of!(FlbPluginProxyDef, description) == 24);
    assert!(offset_of!(FlbPluginProxyDef, event_type) == 32);
    assert!(offset_of!(FlbPluginProxyDef, config_map) == 40);
    assert!(size_of::<FlbApi>() == 72);
    assert!(offset_of!(FlbApi, log_print) == 32);
    assert!(offset_of!(FlbApi, output_log_check) == 48);
    assert!(size_of::<FlbPluginProxyContext>() == 16);
    assert!(size_of::<FlbgoOutputPlugin>() == 72);
    assert!(offset_of!(FlbgoOutputPlugin, context) == 24);
};

/// What Fluent Bit does with a flush return code: `FLB_OK`, `FLB_RETRY` and
/// `FLB_ERROR` are kept, anything else becomes `FLB_ERROR`
/// (`proxy_cb_flush` in `src/flb_plugin_proxy.c`).
pub fn normalize_flush_code(code: i32) -> i32 {
    match code {
        FLB_OK | FLB_RETRY | FLB_ERROR => code,
        _ => FLB_ERROR,
    }
}

/// Parses a `log_level` value as Fluent Bit does (`flb_log_get_level_str`,
/// case-insensitive; `warning` is accepted for `warn`).
pub fn parse_log_level(s: &str) -> Option<i32> {
    let s = s.to_ascii_lowercase();
    Some(match s.as_str() {
        "off" => FLB_LOG_OFF,
        "error" => FLB_LOG_ERROR,
        "warn" | "warning" => FLB_LOG_WARN,
        "info" => FLB_LOG_INFO,
        "debug" => FLB_LOG_DEBUG,
        "trace" => FLB_LOG_TRACE,
        _ => return None,
    })
}

/// The name Fluent Bit prints for a log level.
pub fn log_level_name(level: i32) -> &'static str {
    match level {
        FLB_LOG_OFF => "off",
        FLB_LOG_ERROR => "error",
        FLB_LOG_WARN => "warn",
        FLB_LOG_INFO => "info",
        FLB_LOG_DEBUG => "debug",
        FLB_LOG_TRACE => "trace",
        6 => "help",
        _ => "unknown",
    }
}
