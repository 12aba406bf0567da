//! C struct layouts of Fluent Bit's external-plugin ("Go proxy") ABI, as documented in
//! `docs/fluent-bit-abi.md` and checked against Fluent Bit v5.1.1. LP64 only.

use std::os::raw::{c_char, c_int, c_void};

/// Chunk processed; Fluent Bit drops it from its queue.
pub const FLB_OK: c_int = 1;
/// Chunk failed for good; Fluent Bit drops it.
pub const FLB_ERROR: c_int = 0;
/// Fluent Bit re-schedules the same chunk later (subject to `Retry_Limit`).
pub const FLB_RETRY: c_int = 2;

pub const FLB_PROXY_OUTPUT_PLUGIN: c_int = 2;
pub const FLB_PROXY_GOLANG: c_int = 11;

/// Filled by `FLBPluginRegister`. Fluent Bit zeroes it and frees `name` and
/// `description` with `free()`, so both must come from `malloc`.
#[repr(C)]
pub struct FlbPluginProxyDef {
    pub type_: c_int,
    pub proxy: c_int,
    pub flags: c_int,
    pub name: *mut c_char,
    pub description: *mut c_char,
    pub event_type: c_int,
    pub config_map: *mut c_void,
}

pub type GetPropertyFn =
    unsafe extern "C" fn(key: *const c_char, ins: *mut c_void) -> *const c_char;
pub type GetCmtFn = unsafe extern "C" fn(ins: *mut c_void) -> *mut c_void;
pub type LogPrintFn =
    unsafe extern "C" fn(level: c_int, file: *const c_char, line: c_int, fmt: *const c_char, ...);
pub type LogCheckFn = unsafe extern "C" fn(ins: *mut c_void, level: c_int) -> c_int;

/// Fluent Bit's `struct flb_api`. Entries may be NULL in a host that lacks them.
#[repr(C)]
pub struct FlbApi {
    pub output_get_property: Option<GetPropertyFn>,
    pub input_get_property: Option<GetPropertyFn>,
    pub output_get_cmt_instance: Option<GetCmtFn>,
    pub input_get_cmt_instance: Option<GetCmtFn>,
    pub log_print: Option<LogPrintFn>,
    pub input_log_check: Option<LogCheckFn>,
    pub output_log_check: Option<LogCheckFn>,
    pub custom_get_property: Option<GetPropertyFn>,
    pub custom_log_check: Option<LogCheckFn>,
}

/// Where the plugin stores its per-instance pointer during `FLBPluginInit`.
#[repr(C)]
pub struct FlbPluginProxyContext {
    pub remote_context: *mut c_void,
    pub proxy: *mut c_void,
}

/// What `FLBPluginInit` receives. Fluent Bit-private fields follow `context`; never touched.
#[repr(C)]
pub struct FlbGoOutputPlugin {
    pub name: *mut c_char,
    pub api: *mut FlbApi,
    pub o_ins: *mut c_void,
    pub context: *mut FlbPluginProxyContext,
}
