//! Shared helpers: builds `tests/c/echo_plugin.c` once per test binary with
//! the system C compiler and hands every test its own copy (a separate path
//! is a separate dlopen, so tests running in parallel do not share state).

#![allow(dead_code)]

use std::ffi::c_int;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use flb_host::Plugin;

fn work_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("flb-host-tests-{}", std::process::id()));
        std::fs::create_dir_all(&d).expect("create the test directory");
        d
    })
}

fn compiled_echo() -> &'static Path {
    static SO: OnceLock<PathBuf> = OnceLock::new();
    SO.get_or_init(|| {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/c/echo_plugin.c");
        let out = work_dir().join("libecho.so");
        let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_string());
        let status = Command::new(&cc)
            .args(["-shared", "-fPIC", "-O1", "-g", "-Wall", "-Wextra", "-o"])
            .arg(&out)
            .arg(&src)
            .arg("-lpthread")
            .status()
            .unwrap_or_else(|e| panic!("cannot run {cc}: {e}"));
        assert!(status.success(), "{cc} failed to build {}", src.display());
        out
    })
}

/// A fresh copy of the echo plugin at a path of its own.
pub fn echo_plugin(tag: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::SeqCst);
    let dst = work_dir().join(format!("libecho_{tag}_{n}.so"));
    std::fs::copy(compiled_echo(), &dst).expect("copy the echo plugin");
    dst
}

/// Calls one of the echo plugin's `int echo_xxx(void)` test exports.
pub fn echo_stat(plugin: &Plugin, name: &str) -> i32 {
    let p = plugin
        .symbol(name)
        .unwrap_or_else(|| panic!("missing {name}"));
    // SAFETY: the echo plugin exports `name` as `int name(void)`.
    let f: extern "C" fn() -> c_int = unsafe { std::mem::transmute(p) };
    f()
}
