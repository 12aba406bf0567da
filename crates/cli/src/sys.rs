//! Process figures (getrusage, per-thread CPU from /proc) and Ctrl-C handling.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// CPU time and peak memory of the whole process.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    /// User + system CPU time.
    pub cpu: Duration,
    /// Peak resident set size (`ru_maxrss`) in bytes.
    pub max_rss_bytes: u64,
}

fn tv(t: libc::timeval) -> Duration {
    Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
}

fn rusage(who: libc::c_int) -> Usage {
    // SAFETY: an all-zero rusage is a valid value of this plain C struct.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes into the struct we own; `who` is RUSAGE_SELF/THREAD.
    let rc = unsafe { libc::getrusage(who, &mut ru) };
    if rc != 0 {
        return Usage::default();
    }
    Usage {
        cpu: tv(ru.ru_utime) + tv(ru.ru_stime),
        // Linux reports kilobytes.
        max_rss_bytes: (ru.ru_maxrss.max(0) as u64) * 1024,
    }
}

/// The process so far.
pub fn process() -> Usage {
    rusage(libc::RUSAGE_SELF)
}

/// CPU time of the calling thread.
pub fn this_thread_cpu() -> Duration {
    rusage(libc::RUSAGE_THREAD).cpu
}

/// CPU time of the live threads whose name (as the kernel keeps it, at most 15 bytes)
/// starts with `prefix`, from /proc/self/task/*/stat. Zero where /proc is missing.
pub fn threads_cpu(prefix: &str) -> Duration {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let ticks = if ticks > 0 { ticks as f64 } else { 100.0 };
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return Duration::ZERO;
    };
    let mut total = 0.0;
    for entry in dir.flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid ... utime(14) stime(15): comm may hold spaces and ')'.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        if !stat[open + 1..close].starts_with(prefix) {
            continue;
        }
        let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        // fields[0] is the state (field 3), so utime (14) is fields[11].
        let utime: f64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0);
        let stime: f64 = fields.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
        total += (utime + stime) / ticks;
    }
    Duration::from_secs_f64(total)
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigint(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
    // A second Ctrl-C ends the process the default way.
    // SAFETY: signal() is async-signal-safe; SIG_DFL is a valid disposition.
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_DFL);
    }
}

/// First Ctrl-C: sets a flag (see [`interrupted`]) so a run can stop cleanly and still
/// report; the second one ends the process.
pub fn catch_first_ctrl_c() {
    let handler: extern "C" fn(libc::c_int) = on_sigint;
    // SAFETY: installing a handler that only touches an atomic and calls signal().
    unsafe {
        libc::signal(libc::SIGINT, handler as libc::sighandler_t);
    }
}

/// Whether Ctrl-C was pressed since [`catch_first_ctrl_c`].
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_is_read() {
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        assert!(x != 1);
        let u = process();
        assert!(u.max_rss_bytes > 1024 * 1024);
        let named = std::thread::Builder::new()
            .name("cpu-probe-thread".into())
            .spawn(|| {
                let t0 = std::time::Instant::now();
                let mut y = 0u64;
                while t0.elapsed() < Duration::from_millis(60) {
                    y = y.wrapping_add(1);
                }
                let cpu = threads_cpu("cpu-probe");
                (y, cpu, this_thread_cpu())
            })
            .unwrap()
            .join()
            .unwrap();
        assert!(named.1 > Duration::ZERO || named.2 > Duration::ZERO);
    }
}
