//! Shared by the integration tests: where the built plugin is, test credentials, chunks.
#![allow(dead_code)]

pub mod fluent_bit;
pub mod kube_api;
pub mod moto;
pub mod proxy;

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

/// The tests' secret access key; emulators started with it as `signing_secret` check every
/// request's SigV4 signature, body included.
pub const TEST_SECRET: &str = "firehose-fanout-test-secret";

/// Static credentials and no instance metadata: tests never leave 127.0.0.1.
pub fn test_env() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
        std::env::set_var("AWS_ACCESS_KEY_ID", "AKIDFIREHOSEFANOUTTEST");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", TEST_SECRET);
        std::env::remove_var("AWS_SESSION_TOKEN");
        std::env::remove_var("AWS_PROFILE");
        std::env::remove_var("AWS_ROLE_ARN");
        std::env::remove_var("AWS_WEB_IDENTITY_TOKEN_FILE");
        // A machine's proxy must not carry the tests' loopback traffic.
        for v in ["HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY"] {
            std::env::remove_var(v);
            std::env::remove_var(v.to_ascii_lowercase());
        }
        std::env::set_var("AWS_CONFIG_FILE", "/nonexistent/firehose-fanout-test");
        std::env::set_var(
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/firehose-fanout-test",
        );
    });
}

/// A Fluent Bit chunk (v2 layout) of `n` records `{"seq": first.., "log": log}`.
pub fn seq_chunk(first: u64, n: u64, log: &str) -> Vec<u8> {
    let mut b = flb_host::chunk::ChunkBuilder::new();
    for seq in first..first + n {
        b.push_v2(
            flb_host::chunk::EventTime {
                sec: 1_764_000_000,
                nsec: 0,
            },
            &serde_json::json!({}),
            &serde_json::json!({"seq": seq, "log": log}),
        );
    }
    b.finish()
}

/// seq → how many times it occurs in `data` (newline-separated JSON records; aggregated
/// Firehose records hold several).
pub fn count_seqs(data: &[u8], seen: &mut std::collections::BTreeMap<u64, u32>) {
    for l in data.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let v: serde_json::Value = serde_json::from_slice(l).expect("a JSON line");
        *seen.entry(v["seq"].as_u64().expect("seq")).or_insert(0) += 1;
    }
}
