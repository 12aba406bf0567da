//! `FLBPluginOutputPreRun`: warns when hot reload is on and an instance has worker threads.
//!
//! Fluent Bit (v2.2 up to at least v5.1.1) starts the worker pool of an external output
//! twice and stops only the second at a reload; the first pool's timer then reads the freed
//! instance and the process dies (SIGSEGV in `flb_upstream_conn_timeouts`) at the second
//! reload. Nothing an external plugin returns or registers changes that
//! (docs/upstream/hot-reload-proxy-workers.md), so the plugin says how to avoid it.
//! `workers` is consumed by Fluent Bit and invisible to the plugin: the pool's threads are
//! found by name (`flb-out-` + the first 7 bytes of the instance name, as Linux keeps 15).

use crate::instance::HOT_RELOAD_WARNING;
use crate::telemetry::log::Logger;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Whether the host said hot reload is on (the last PreRun).
static HOT_RELOAD: AtomicBool = AtomicBool::new(false);

/// Instances started and not yet looked at by PreRun: (context address, name, logger).
/// Exit removes its own, so no logger outlives its Fluent Bit instance here.
static STARTED: Mutex<Vec<(usize, String, Logger)>> = Mutex::new(Vec::new());

/// How long PreRun waits for worker threads to take their names (they rename themselves
/// after they start).
const THREAD_NAME_WAIT: Duration = Duration::from_millis(200);

pub(super) fn started(ctx: usize, name: &str, log: &Logger) {
    lock().push((ctx, name.to_string(), log.clone()));
}

pub(super) fn exited(ctx: usize) {
    lock().retain(|(c, _, _)| *c != ctx);
}

pub(super) fn hot_reload() -> bool {
    HOT_RELOAD.load(Ordering::Relaxed)
}

fn lock() -> std::sync::MutexGuard<'static, Vec<(usize, String, Logger)>> {
    STARTED.lock().unwrap_or_else(|p| p.into_inner())
}

/// Threads of this process whose name starts with `prefix`.
fn threads_named(prefix: &str) -> usize {
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    dir.filter_map(Result::ok)
        .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
        .filter(|comm| comm.trim_end().starts_with(prefix))
        .count()
}

/// The worker thread name prefix of instance `name`.
pub(crate) fn worker_prefix(name: &str) -> String {
    let mut p = String::from("flb-out-");
    p.extend(name.chars().take(7));
    p
}

pub(super) fn pre_run(hot_reload_enabled: bool) {
    HOT_RELOAD.store(hot_reload_enabled, Ordering::Relaxed);
    let started = std::mem::take(&mut *lock());
    if !hot_reload_enabled || started.is_empty() {
        return;
    }
    let until = Instant::now() + THREAD_NAME_WAIT;
    let mut left = started;
    while !left.is_empty() {
        left.retain(|(_, name, log)| {
            if threads_named(&worker_prefix(name)) == 0 {
                return true;
            }
            log.warn(format_args!("{HOT_RELOAD_WARNING}"));
            false
        });
        if Instant::now() >= until {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn worker_names_are_cut_like_linux_cuts_them() {
        assert_eq!(super::worker_prefix("firehose_fanout.0"), "flb-out-firehos");
        assert_eq!(super::worker_prefix("a"), "flb-out-a");
    }
}
