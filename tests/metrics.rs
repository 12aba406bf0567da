//! Metrics in Fluent Bit's cmetrics context, through stand-in cmetrics functions that this
//! test loads globally (as the fluent-bit executable exports the real ones); and the
//! summary log line where the host has none.

mod common;

use firehose_emulator::{Emulator, EmulatorConfig, Faults, StreamSpec};
use flb_host::{InitOptions, Plugin, FLB_OK};
use std::ffi::{c_char, c_void, CString};
use std::path::PathBuf;
use std::time::{Duration, Instant};

type ValueFn = unsafe extern "C" fn(*const c_char, *const c_char) -> f64;
type ConcurrencyFn = unsafe extern "C" fn() -> i32;

/// Builds tests/c/cmt_standin.c and loads it with RTLD_GLOBAL; returns its readers.
fn load_standin() -> (ValueFn, ConcurrencyFn) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let out = std::env::temp_dir().join(format!("cmt-standin-{}.so", std::process::id()));
    let ok = std::process::Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()))
        .args(["-shared", "-fPIC", "-O1", "-o"])
        .arg(&out)
        .arg(root.join("tests/c/cmt_standin.c"))
        .arg("-lpthread")
        .status()
        .expect("cc")
        .success();
    assert!(ok, "building the cmetrics stand-in");
    let path = CString::new(out.to_str().unwrap()).unwrap();
    // SAFETY: loading a library this test just built; RTLD_GLOBAL makes its symbols visible
    // to dlsym(RTLD_DEFAULT, ...), as the fluent-bit executable's are.
    let handle = unsafe { libc::dlopen(path.as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL) };
    assert!(!handle.is_null());
    // SAFETY: the symbols are the stand-in's `double standin_value(const char*, const
    // char*)` and `int standin_max_concurrent(void)`.
    unsafe {
        let f = libc::dlsym(handle, c"standin_value".as_ptr());
        let c = libc::dlsym(handle, c"standin_max_concurrent".as_ptr());
        assert!(!f.is_null() && !c.is_null());
        (
            std::mem::transmute::<*mut c_void, ValueFn>(f),
            std::mem::transmute::<*mut c_void, ConcurrencyFn>(c),
        )
    }
}

fn value(f: ValueFn, name: &str, labels: &str) -> f64 {
    let (n, l) = (CString::new(name).unwrap(), CString::new(labels).unwrap());
    // SAFETY: NUL-terminated strings; the stand-in only reads them.
    unsafe { f(n.as_ptr(), l.as_ptr()) }
}

fn chunk(first: u64, n: u64) -> Vec<u8> {
    common::seq_chunk(first, n, &"x".repeat(90))
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn metrics_per_instance_and_stream_and_a_summary_without_cmetrics() {
    common::test_env();
    let (read, max_concurrent) = load_standin();
    let emu = Emulator::start(EmulatorConfig {
        streams: vec![StreamSpec::new("m0"), StreamSpec::new("m1")],
        seed: Some(3),
        ..Default::default()
    })
    .expect("emulator");
    emu.set_faults(
        Some("m1"),
        Faults {
            record_failure_rate: 0.2,
            ..Default::default()
        },
    );
    let ep = emu.endpoint();
    let plugin = Plugin::load(common::plugin_path()).expect("load");
    let props = [
        ("region", "us-east-1"),
        ("endpoint", ep.as_str()),
        ("delivery_streams", "m0,m1"),
        ("aggregation", "off"),
        ("metrics_interval", "200ms"),
        ("summary_interval", "300ms"),
        ("retry_initial_backoff", "10ms"),
    ];
    let mut fake_cmt = [0u8; 64];
    let ins = plugin
        .init_with(
            &props,
            &InitOptions {
                cmt_instance: fake_cmt.as_mut_ptr() as *mut c_void,
                ..Default::default()
            },
        )
        .expect("init");
    assert_eq!(ins.flush(&chunk(0, 2000), "t"), FLB_OK);

    // The instance's name label comes from its start line.
    let started = flb_host::logs_containing("delivery stream(s) [m0, m1]");
    let name = started[0]
        .message
        .split(':')
        .nth(2)
        .unwrap()
        .split(']')
        .next()
        .unwrap()
        .to_string();
    let records = |s: &str| {
        value(
            read,
            "fluentbit_firehose_fanout_records_total",
            &format!("{name},{s}"),
        )
    };
    wait_until("records_total", || records("m0") + records("m1") == 2000.0);
    assert!(records("m0") > 0.0 && records("m1") > 0.0);
    let bytes = value(
        read,
        "fluentbit_firehose_fanout_bytes_total",
        &format!("{name},m0"),
    );
    assert!(bytes > records("m0") * 90.0);
    let billed = value(
        read,
        "fluentbit_firehose_fanout_billed_bytes_total",
        &format!("{name},m0"),
    );
    assert_eq!(
        billed,
        records("m0") * 5120.0,
        "one 5 KB unit per unaggregated record"
    );
    let failed = value(
        read,
        "fluentbit_firehose_fanout_failed_records_total",
        &format!("{name},m1"),
    );
    assert!(failed > 0.0, "m1's injected failures are counted");
    let retried = value(
        read,
        "fluentbit_firehose_fanout_retried_records_total",
        &name,
    );
    assert!(retried >= failed);
    assert!(
        value(
            read,
            "fluentbit_firehose_fanout_in_flight_requests",
            &format!("{name},m0")
        ) >= 0.0
    );
    assert!(
        value(
            read,
            "fluentbit_firehose_fanout_rate_bytes_per_second",
            &format!("{name},m0")
        ) > 1e6
    );
    assert_eq!(ins.exit(), FLB_OK);
    // SAFETY: the stand-in's reader, no arguments.
    assert_eq!(
        unsafe { max_concurrent() },
        1,
        "cmetrics calls never overlap"
    );

    // Without a cmetrics context: a summary line instead.
    let ins = plugin.init(&[
        ("region", "us-east-1"),
        ("endpoint", ep.as_str()),
        ("delivery_streams", "m0"),
        ("summary_interval", "300ms"),
    ]);
    let ins = ins.expect("init");
    assert_eq!(ins.flush(&chunk(5000, 300), "t"), FLB_OK);
    wait_until("a summary line", || {
        flb_host::logs().iter().any(|l| {
            l.message.contains("300 record(s) delivered")
                && l.message.contains("per stream: m0=300")
        })
    });
    assert_eq!(ins.exit(), FLB_OK);
}
