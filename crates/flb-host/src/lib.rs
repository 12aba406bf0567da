//! `flb-host`: a test host that loads a Fluent Bit external output plugin
//! (`.so`) with `dlopen` and drives it the way Fluent Bit v5's Go proxy does
//! (`src/flb_plugin_proxy.c`, `src/proxy/go/go.c`).
//!
//! ```no_run
//! use flb_host::{chunk::{ChunkBuilder, EventTime}, Plugin, FLB_OK};
//! use serde_json::json;
//!
//! let plugin = Plugin::load("target/debug/libfirehose_fanout.so")?;
//! let ins = plugin.init(&[("region", "eu-west-1"), ("log_level", "debug")])?;
//! let mut chunk = ChunkBuilder::new();
//! chunk.push_v2(EventTime::new(1_700_000_000, 0), &json!({}), &json!({"message": "hi"}));
//! let report = ins.flush_coro(&chunk.finish(), "app.logs");
//! assert_eq!(report.code, FLB_OK);
//! assert!(report.stack_used_bytes.unwrap() < 16 * 1024);
//! ins.exit();
//! plugin.unload()?;
//! # Ok::<(), flb_host::HostError>(())
//! ```
//!
//! # What the host does, in Fluent Bit's order
//!
//! * [`Plugin::load`]: `dlopen(path, RTLD_LAZY)`, `FLBPluginPreRegister(hot_reloading)`
//!   if exported (-1 aborts), `FLBPluginRegister(def)` with a zeroed
//!   `struct flb_plugin_proxy_def` whose `type` is `FLB_PROXY_OUTPUT_PLUGIN`
//!   (-1 aborts; any other value is success), then checks proxy = 11 / type = 2
//!   and resolves `FLBPluginInit` (required), `FLBPluginFlush[Ctx]`,
//!   `FLBPluginExit[Ctx]`. Each loaded plugin gets an engine thread named
//!   `flb-pipeline`.
//! * [`Plugin::init`]: a fake `struct flb_output_instance` (`o_ins`), a
//!   `struct flb_plugin_proxy_context`, and `FLBPluginInit(p)` on the engine
//!   thread; `<= 0` is [`HostError::InitFailed`]. Then
//!   `FLBPluginOutputPreRun(enable_hot_reload)`.
//! * [`Instance::flush`] and friends: `FLBPluginFlushCtx(remote_context,
//!   data, size, tag_copy)` on a worker thread (`flb-out-<ins>-w<N>`) or on
//!   the engine thread, on a 64 KiB stack; optionally inside a real 64 KiB
//!   coroutine with a stack high-water-mark report ([`FlushReport`]).
//! * [`Instance::exit`]: `FLBPluginOutputPreExit(0)`, `FLBPluginExitCtx(remote_context)`
//!   on the engine thread.
//! * Dropping / [`Plugin::unload`]: engine thread joined,
//!   `FLBPluginUnregister(def)`, `dlclose`.
//!
//! # Things a plugin author must know (all true of Fluent Bit too)
//!
//! * The `struct flbgo_output_plugin *p` given to `FLBPluginInit` is shared by
//!   all instances of the plugin and overwritten at each init: copy `p->api`,
//!   `p->o_ins`, `p->context` during init, do not keep `p`.
//! * `def->name` / `def->description` stay owned by the plugin; Fluent Bit
//!   never frees them (free them in `FLBPluginUnregister`, as the Go SDK does).
//! * Core keys are consumed by Fluent Bit and invisible through
//!   `output_get_property`: `match`, `match_regex`, `alias`, `log_level`,
//!   `log_suppress_interval`, `host`, `port`, `ipv6`, `retry_limit`, `workers`,
//!   `storage.total_limit_size`, `tls`, `tls.*`, `net.*`, `oauth2*`. A key given
//!   with an empty value yields NULL.
//! * Worker thread names are truncated by the kernel to 15 bytes:
//!   `flb-out-firehose_fanout.0-w0` reads back as `flb-out-firehos`; test the
//!   `flb-out-` prefix, and `flb-pipeline` for the engine thread.
//! * `log_print` formats into fixed buffers on the caller's stack (~8 KiB of
//!   stack per call) and truncates messages at about 4 KiB.
//! * Host structures are freed right after `FLBPluginExitCtx` returns: API
//!   calls with that `o_ins` afterwards are use-after-free in Fluent Bit
//!   (here they are recorded in [`violations`]).

#![warn(missing_docs)]

pub mod abi;
pub mod chunk;
mod engine;
mod instance;
mod log;
mod plugin;
mod stack;

pub use abi::{
    log_level_name, normalize_flush_code, parse_log_level, FLB_ERROR, FLB_LOG_DEBUG, FLB_LOG_ERROR,
    FLB_LOG_INFO, FLB_LOG_OFF, FLB_LOG_TRACE, FLB_LOG_WARN, FLB_OK, FLB_PROXY_GOLANG,
    FLB_PROXY_OUTPUT_PLUGIN, FLB_RETRY,
};
pub use engine::ENGINE_THREAD_NAME;
pub use instance::{
    host_api, FlushOn, FlushOptions, FlushReport, FlushStack, InitOptions, Instance,
};
pub use log::{
    clear_logs, clear_violations, dropped_log_lines, logs, logs_containing, violations,
    wait_for_log, LogLine, LOG_CAPACITY,
};
pub use plugin::{HostConfig, Plugin, DEFAULT_CORO_STACK_SIZE};

/// Errors of the host.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// `dlopen` failed.
    #[error("dlopen({path}) failed: {message}")]
    Dlopen {
        /// The path given.
        path: String,
        /// `dlerror()`.
        message: String,
    },
    /// `dlclose` failed.
    #[error("dlclose failed: {0}")]
    Dlclose(String),
    /// A required symbol is not exported.
    #[error("the plugin does not export {0}")]
    MissingSymbol(&'static str),
    /// `FLBPluginPreRegister` returned -1.
    #[error("FLBPluginPreRegister returned -1")]
    PreRegisterFailed,
    /// `FLBPluginRegister` returned -1.
    #[error("FLBPluginRegister returned -1")]
    RegisterFailed,
    /// The registration is not a Go-proxy output plugin (Fluent Bit would
    /// not create the output).
    #[error(
        "the plugin registered proxy {proxy} / type {plugin_type}; Fluent Bit only accepts \
         proxy 11 (FLB_PROXY_GOLANG) with type 2 (FLB_PROXY_OUTPUT_PLUGIN)"
    )]
    Unsupported {
        /// `def->proxy`.
        proxy: i32,
        /// `def->type`.
        plugin_type: i32,
    },
    /// `def->name` is NULL after registration.
    #[error("the plugin registered a NULL name")]
    NoName,
    /// A core property has a value Fluent Bit rejects at start-up.
    #[error("invalid value {value:?} for property {key:?}: {reason}")]
    InvalidProperty {
        /// Key.
        key: String,
        /// Value.
        value: String,
        /// Why.
        reason: String,
    },
    /// A string with an interior NUL byte.
    #[error("string contains a NUL byte: {0:?}")]
    InvalidString(String),
    /// `FLBPluginInit` returned this value (`<= 0`).
    #[error("FLBPluginInit returned {0} (could not initialize plugin)")]
    InitFailed(i32),
    /// [`Plugin::unload`] while instances are alive; the plugin is unloaded
    /// when the last one is dropped.
    #[error("{0} instance(s) still alive; the plugin is unloaded when they are gone")]
    InstancesAlive(usize),
    /// Thread trouble (engine thread gone, host panic).
    #[error("thread error: {0}")]
    Thread(String),
    /// A coroutine stack could not be created.
    #[error("coroutine stack: {0}")]
    Stack(String),
}
