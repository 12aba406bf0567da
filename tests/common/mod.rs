//! Shared by the integration tests: where the built plugin is, test credentials, chunks.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Once;

/// The cdylib cargo built for this test run: `cargo test` leaves it in `deps/`, next to
/// the test executable (it only copies it up to target/<profile>/ on `cargo build`).
pub fn plugin_path() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let deps = exe.parent().expect("deps dir").to_path_buf();
    let p = deps.join("libfirehose_fanout.so");
    assert!(p.exists(), "the plugin library was not built at {p:?}");
    p
}

/// Static credentials and no instance metadata: tests never leave 127.0.0.1.
pub fn test_env() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
        std::env::set_var("AWS_ACCESS_KEY_ID", "AKIDFIREHOSEFANOUTTEST");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "firehose-fanout-test-secret");
        std::env::remove_var("AWS_SESSION_TOKEN");
        std::env::remove_var("AWS_PROFILE");
        std::env::remove_var("AWS_ROLE_ARN");
        std::env::remove_var("AWS_WEB_IDENTITY_TOKEN_FILE");
        std::env::set_var("AWS_CONFIG_FILE", "/nonexistent/firehose-fanout-test");
        std::env::set_var(
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/firehose-fanout-test",
        );
    });
}
