//! Finding, loading and starting the plugin library through flb-host (the same ABI as
//! Fluent Bit), and the plugin's log lines.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use flb_host::{HostError, Instance, LogLine, Plugin, FLB_LOG_ERROR, FLB_LOG_WARN};

/// File name of the plugin library.
pub const LIB_NAME: &str = "libfirehose_fanout.so";
/// Environment variable naming the plugin library.
pub const ENV_PLUGIN: &str = "FIREHOSE_FANOUT_PLUGIN";

/// The plugin library: `--plugin`, else `$FIREHOSE_FANOUT_PLUGIN`, else next to this
/// executable (`<exe dir>/libfirehose_fanout.so` or `<exe dir>/deps/libfirehose_fanout.so`,
/// the newer of the two when both exist: `cargo build` of this binary refreshes the one in
/// `deps/`, while the one beside it is only refreshed by building the plugin package itself).
pub fn locate(explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(p) = explicit {
        if p.is_file() {
            return Ok(p.to_path_buf());
        }
        bail!("plugin library {} (--plugin) does not exist", p.display());
    }
    if let Some(p) = std::env::var_os(ENV_PLUGIN).filter(|v| !v.is_empty()) {
        let p = PathBuf::from(p);
        if p.is_file() {
            return Ok(p);
        }
        bail!(
            "plugin library {} ({ENV_PLUGIN}) does not exist",
            p.display()
        );
    }
    let exe = std::env::current_exe().context("cannot tell where this executable is")?;
    let dir = exe
        .parent()
        .ok_or_else(|| anyhow!("cannot tell where this executable is"))?;
    let candidates = [dir.join(LIB_NAME), dir.join("deps").join(LIB_NAME)];
    let newest = candidates
        .iter()
        .filter_map(|p| {
            let modified = std::fs::metadata(p).ok()?.modified().ok()?;
            Some((modified, p))
        })
        .fold(
            None::<(std::time::SystemTime, &PathBuf)>,
            |best, (m, p)| match best {
                Some((bm, _)) if bm >= m => best,
                _ => Some((m, p)),
            },
        );
    if let Some((_, p)) = newest {
        return Ok(p.clone());
    }
    let build = match dir.file_name().and_then(|n| n.to_str()) {
        Some("release") => "cargo build --release",
        Some("debug") => "cargo build",
        _ => "cargo build --release (in the firehose-fanout checkout; it writes target/release/libfirehose_fanout.so)",
    };
    bail!(
        "{LIB_NAME} not found in {} nor in its deps/ folder: build it with `{build}`, or pass --plugin PATH or set {ENV_PLUGIN}",
        dir.display()
    )
}

/// Is `endpoint` (a URL) on this machine?
pub fn is_local_endpoint(endpoint: &str) -> bool {
    let rest = endpoint
        .split_once("://")
        .map(|(_, r)| r)
        .unwrap_or(endpoint);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        authority.split(':').next().unwrap_or("")
    };
    host.eq_ignore_ascii_case("localhost") || host == "::1" || host.starts_with("127.")
}

/// For a local emulator: static dummy credentials (unless some are set) and no instance
/// metadata, so the AWS SDK inside the plugin never leaves the machine looking for them.
/// Must run before any thread is started and before the plugin is loaded.
pub fn local_aws_env() {
    if std::env::var_os("AWS_ACCESS_KEY_ID").is_none()
        || std::env::var_os("AWS_SECRET_ACCESS_KEY").is_none()
    {
        std::env::set_var("AWS_ACCESS_KEY_ID", "AKIDFIREHOSEFANOUTLOCAL");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "firehose-fanout-local-emulator");
        std::env::remove_var("AWS_SESSION_TOKEN");
    }
    std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
}

/// One line, whatever the plugin put in it.
pub fn one_line(s: &str) -> String {
    s.split(['\n', '\r'])
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Loads the library and initialises one instance with `props`.
pub fn start(path: &Path, props: &[(String, String)]) -> Result<(Plugin, Instance)> {
    let plugin = Plugin::load(path).map_err(|e| {
        anyhow!(
            "cannot load the plugin {}: {}",
            path.display(),
            one_line(&e.to_string())
        )
    })?;
    let before = flb_host::logs().len();
    let pairs: Vec<(&str, &str)> = props
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    match plugin.init(&pairs) {
        Ok(ins) => Ok((plugin, ins)),
        Err(HostError::InitFailed(code)) => {
            let lines = flb_host::logs();
            let error = lines
                .iter()
                .skip(before.min(lines.len()))
                .rev()
                .find(|l| l.level <= FLB_LOG_ERROR)
                .or_else(|| lines.iter().rev().find(|l| l.level <= FLB_LOG_ERROR));
            match error {
                Some(l) => bail!("the plugin did not start: {}", one_line(&l.message)),
                None => bail!(
                    "the plugin did not start: FLBPluginInit returned {code} without an error line"
                ),
            }
        }
        Err(e) => bail!("the plugin did not start: {}", one_line(&e.to_string())),
    }
}

/// Follows the plugin's log lines (the host keeps them in a process-wide store).
#[derive(Debug, Default)]
pub struct LogTail {
    /// Lines seen so far (dropped ones included).
    seen: u64,
}

impl LogTail {
    /// Lines logged since the last call.
    pub fn new_lines(&mut self) -> Vec<LogLine> {
        let lines = flb_host::logs();
        let dropped = flb_host::dropped_log_lines();
        let total = dropped + lines.len() as u64;
        let skip = self.seen.saturating_sub(dropped) as usize;
        self.seen = total;
        lines.into_iter().skip(skip).collect()
    }
}

/// `[plugin] [ warn] message`.
pub fn format_line(l: &LogLine) -> String {
    format!(
        "[plugin] [{:>5}] {}",
        flb_host::log_level_name(l.level),
        l.message
    )
}

/// Warnings and errors among all stored lines: `(errors, warnings)`.
pub fn count_problems() -> (u64, u64) {
    flb_host::logs()
        .iter()
        .fold((0, 0), |(e, w), l| match l.level {
            FLB_LOG_ERROR => (e + 1, w),
            FLB_LOG_WARN => (e, w + 1),
            _ => (e, w),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_endpoints() {
        assert!(is_local_endpoint("http://127.0.0.1:4573"));
        assert!(is_local_endpoint("http://localhost:4573/"));
        assert!(is_local_endpoint("http://[::1]:4573"));
        assert!(is_local_endpoint("127.0.0.1:80"));
        assert!(!is_local_endpoint(
            "https://firehose.us-east-1.amazonaws.com"
        ));
        assert!(!is_local_endpoint("http://10.0.0.1:4573"));
    }

    #[test]
    fn one_line_joins() {
        assert_eq!(one_line("a\nb\r\n c "), "a b c");
    }
}
