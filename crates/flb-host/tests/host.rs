//! flb-host against the C echo plugin (tests/c/echo_plugin.c).

mod common;

use std::ffi::CString;
use std::ptr;

use common::{echo_plugin, echo_stat};
use flb_host::chunk::{ChunkBuilder, EventTime};
use flb_host::*;
use serde_json::json;

fn chunk() -> Vec<u8> {
    let mut c = ChunkBuilder::new();
    c.push_v2(
        EventTime::new(1_700_000_000, 1),
        &json!({}),
        &json!({"message": "hello"}),
    );
    c.finish()
}

fn has_log(needle: &str) -> bool {
    !logs_containing(needle).is_empty()
}

#[test]
fn types_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Instance>();
    check::<Plugin>();
}

#[test]
fn register_exposes_the_definition() {
    let path = echo_plugin("register");
    let plugin = Plugin::load(&path).unwrap();
    assert_eq!(plugin.name(), "echo");
    assert_eq!(plugin.description(), "echo test plugin");
    assert_eq!(plugin.proxy_kind(), FLB_PROXY_GOLANG);
    assert_eq!(plugin.plugin_type(), FLB_PROXY_OUTPUT_PLUGIN);
    assert_eq!(plugin.event_type(), 0);
    assert_eq!(plugin.flags(), 0);
    assert!(plugin.has_symbol("FLBPluginFlushCtx"));
    // the host pre-fills def->type and passes hot_reloading = 0
    assert_eq!(
        echo_stat(&plugin, "echo_def_type_seen"),
        FLB_PROXY_OUTPUT_PLUGIN
    );
    assert_eq!(echo_stat(&plugin, "echo_pre_register_arg"), 0);
    assert_eq!(echo_stat(&plugin, "echo_register_count"), 1);
    plugin.unload().unwrap();
    assert!(!Plugin::is_mapped(&path));
}

#[test]
fn load_errors() {
    match Plugin::load("/nonexistent/libnothing.so") {
        Err(HostError::Dlopen { .. }) => {}
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn properties_are_case_insensitive_and_core_keys_consumed() {
    let plugin = Plugin::load(echo_plugin("props")).unwrap();
    std::env::set_var("FLB_HOST_TEST_REGION", "eu-west-1");
    let ins = plugin
        .init(&[
            ("name", "echo"),
            ("Label", "t-props"),
            ("RESULT", "retry"),
            ("Workers", "2"),
            ("match", "*"),
            ("retry_limit", "5"),
            ("Region", "${FLB_HOST_TEST_REGION}"),
            ("empty", ""),
            ("dup", "first"),
            ("DUP", "second"),
        ])
        .unwrap();
    assert_eq!(ins.name(), "echo.0");
    assert_eq!(ins.property("label").as_deref(), Some("t-props"));
    assert_eq!(ins.property("LABEL").as_deref(), Some("t-props"));
    assert_eq!(ins.property("region").as_deref(), Some("eu-west-1"));
    assert_eq!(ins.property("dup").as_deref(), Some("first"));
    for hidden in [
        "workers",
        "match",
        "retry_limit",
        "name",
        "empty",
        "lab",
        "",
    ] {
        assert_eq!(ins.property(hidden), None, "{hidden}");
    }
    // host-owned memory, stable across calls
    let p1 = ins.property_ptr("label");
    let p2 = ins.property_ptr("LaBeL");
    assert!(!p1.is_null());
    assert_eq!(p1, p2);
    assert!(ins
        .core_properties()
        .iter()
        .any(|(k, v)| k == "Workers" && v == "2"));
    // the plugin saw RESULT=retry through its own lookup of "result"
    assert_eq!(ins.flush(&chunk(), "t"), FLB_RETRY);
    assert!(!ins.remote_context().is_null());
    assert_eq!(ins.exit(), FLB_OK);
}

#[test]
fn init_return_values() {
    let plugin = Plugin::load(echo_plugin("initret")).unwrap();
    for code in [0, -1] {
        match plugin.init(&[("init_return", &code.to_string())]) {
            Err(HostError::InitFailed(c)) => assert_eq!(c, code),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(plugin.live_instances(), 0);
    // any positive value is success
    let ins = plugin.init(&[("init_return", "7")]).unwrap();
    assert_eq!(plugin.live_instances(), 1);
    // remote_context stayed NULL: FLBPluginExitCtx(NULL)
    assert_eq!(ins.exit(), FLB_ERROR);
    assert_eq!(plugin.live_instances(), 0);
}

#[test]
fn invalid_log_level_fails_like_fluent_bit() {
    let plugin = Plugin::load(echo_plugin("badlevel")).unwrap();
    match plugin.init(&[("log_level", "verbose")]) {
        Err(HostError::InvalidProperty { key, .. }) => assert_eq!(key, "log_level"),
        other => panic!("unexpected {other:?}"),
    }
    match plugin.init(&[("tls", "on")]) {
        Err(HostError::InvalidProperty { key, .. }) => assert_eq!(key, "tls"),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn logs_are_captured_with_level_filtering() {
    let plugin = Plugin::load(echo_plugin("logs")).unwrap();
    // a label full of conversion specifiers: the plugin passes it as an
    // argument of "%s", so it must come out verbatim
    let ins = plugin
        .init(&[("label", "t-logs %s%n%d"), ("log_level", "debug")])
        .unwrap();
    assert_eq!(ins.log_level(), FLB_LOG_DEBUG);
    assert!(ins.log_check(FLB_LOG_DEBUG));
    assert!(!ins.log_check(FLB_LOG_TRACE));
    let lines = logs_containing("[t-logs %s%n%d] init result=1 cmt=null");
    assert_eq!(lines.len(), 1, "{:?}", logs());
    assert_eq!(lines[0].level, FLB_LOG_INFO);
    assert!(
        lines[0].file.ends_with("echo_plugin.c"),
        "{}",
        lines[0].file
    );
    assert!(lines[0].line > 0);
    assert!(has_log("[t-logs %s%n%d] debug enabled"));

    let quiet = plugin
        .init(&[("label", "t-logs-quiet"), ("log_level", "error")])
        .unwrap();
    assert_eq!(quiet.log_level(), FLB_LOG_ERROR);
    assert!(!has_log("[t-logs-quiet] init"));
    assert_eq!(quiet.flush(&chunk(), "q"), FLB_OK);
    assert!(!has_log("[t-logs-quiet] flush"));
    quiet.set_log_level(FLB_LOG_INFO);
    assert_eq!(quiet.flush(&chunk(), "q"), FLB_OK);
    assert!(has_log("[t-logs-quiet] flush"));

    // default: the service level (info)
    let dflt = plugin.init(&[("label", "t-logs-default")]).unwrap();
    assert_eq!(dflt.log_level(), FLB_LOG_INFO);
    assert!(!has_log("[t-logs-default] debug enabled"));
    assert!(has_log("[t-logs-default] init"));
}

#[test]
fn wait_for_log_sees_existing_lines() {
    let plugin = Plugin::load(echo_plugin("wait")).unwrap();
    let _ins = plugin.init(&[("label", "t-wait")]).unwrap();
    let l = wait_for_log(
        |l| l.message.starts_with("[t-wait] init"),
        std::time::Duration::from_secs(5),
    );
    assert!(l.is_some());
}

#[test]
fn flush_on_a_worker_thread() {
    let plugin = Plugin::load(echo_plugin("worker")).unwrap();
    let ins = plugin.init(&[("label", "t-worker")]).unwrap();
    let data = chunk();
    assert_eq!(ins.flush(&data, "app.tag"), FLB_OK);
    // "flb-out-echo.0-w0" truncated by the kernel to 15 bytes
    let expected = format!(
        "[t-worker] flush tag=app.tag size={} data=set thread=flb-out-echo.0-",
        data.len()
    );
    assert!(has_log(&expected), "{:?}", logs_containing("[t-worker]"));
    assert_eq!(ins.worker_thread_name(0), "flb-out-echo.0-w0");

    let r = ins.flush_with(
        &data,
        "w3",
        &FlushOptions {
            on: FlushOn::Worker(3),
            stack: FlushStack::Thread,
            stack_size: None,
        },
    );
    assert_eq!(r.code, FLB_OK);
    assert_eq!(r.thread_name, "flb-out-echo.0-");
    assert_eq!(r.stack_size, 64 * 1024);
    assert_eq!(r.stack_used_bytes, None);

    // a flush that needs 40 KiB of stack fits in the 64 KiB thread
    let big = plugin
        .init(&[("label", "t-worker-big"), ("stack_kib", "40")])
        .unwrap();
    assert_eq!(big.flush(&data, "big"), FLB_OK);
}

#[test]
fn flush_on_the_engine_thread() {
    let plugin = Plugin::load(echo_plugin("engine")).unwrap();
    let ins = plugin.init(&[("label", "t-engine")]).unwrap();
    assert_eq!(ins.flush_on_engine_thread(&chunk(), "eng"), FLB_OK);
    assert!(has_log(
        "[t-engine] flush tag=eng size=28 data=set thread=flb-pipeline"
    ));
    let r = ins.flush_with(&chunk(), "eng2", &FlushOptions::engine());
    assert_eq!(r.thread_name, ENGINE_THREAD_NAME);
    assert!(r.stack_used_bytes.is_some());
}

#[test]
fn coroutine_flush_reports_the_stack_high_water_mark() {
    let plugin = Plugin::load(echo_plugin("coro")).unwrap();
    let data = chunk();

    let light = plugin.init(&[("label", "t-coro-light")]).unwrap();
    let r = light.flush_coro(&data, "c");
    assert_eq!(r.code, FLB_OK);
    assert_eq!(r.stack_size, 64 * 1024);
    assert!(!r.stack_overflowed);
    let used = r.stack_used_bytes.unwrap();
    eprintln!("light flush used {used} bytes of its 64 KiB coroutine stack");
    // log_print alone takes ~8 KiB, as in Fluent Bit
    assert!(used > 8 * 1024 && used < 24 * 1024, "used {used}");
    assert!(r.thread_name.starts_with("flb-out-"));

    // without logging, the host's own frames are a few hundred bytes
    let quiet = plugin
        .init(&[("label", "t-coro-quiet"), ("log_level", "error")])
        .unwrap();
    let r = quiet.flush_coro(&data, "c");
    let quiet_used = r.stack_used_bytes.unwrap();
    eprintln!("quiet flush used {quiet_used} bytes");
    assert!(quiet_used < 4 * 1024, "used {quiet_used}");

    let heavy = plugin
        .init(&[("label", "t-coro-heavy"), ("stack_kib", "32")])
        .unwrap();
    let r = heavy.flush_coro(&data, "c");
    assert_eq!(r.code, FLB_OK);
    assert!(!r.stack_overflowed);
    assert!(r.stack_used_bytes.unwrap() >= 32 * 1024, "{r:?}");
    assert!(r.stack_used_bytes.unwrap() < 64 * 1024, "{r:?}");

    // a flush that needs 80 KiB overflows the 64 KiB coroutine: detected in
    // the red zone instead of corrupting memory
    let over = plugin
        .init(&[("label", "t-coro-over"), ("stack_kib", "80")])
        .unwrap();
    let r = over.flush_coro(&data, "c");
    assert!(r.stack_overflowed, "{r:?}");
    assert!(r.stack_used_bytes.unwrap() > 64 * 1024);

    // a bigger coroutine stack fits it
    let r = over.flush_with(
        &data,
        "c",
        &FlushOptions {
            stack_size: Some(256 * 1024),
            ..FlushOptions::worker_coroutine()
        },
    );
    assert!(!r.stack_overflowed);
    assert_eq!(r.stack_size, 256 * 1024);
}

#[test]
fn flush_codes_are_passed_through() {
    let plugin = Plugin::load(echo_plugin("codes")).unwrap();
    let err = plugin.init(&[("result", "error")]).unwrap();
    assert_eq!(err.flush(&chunk(), "t"), FLB_ERROR);
    let odd = plugin.init(&[("result", "7")]).unwrap();
    let r = odd.flush_coro(&chunk(), "t");
    assert_eq!(r.code, 7);
    assert_eq!(r.fluent_bit_result(), FLB_ERROR);
}

#[test]
fn hostile_raw_flushes() {
    let plugin = Plugin::load(echo_plugin("raw")).unwrap();
    let ins = plugin.init(&[("label", "t-raw")]).unwrap();
    let tag = CString::new("raw.tag").unwrap();
    // SAFETY: NULL data with size 0, valid tag.
    let code = unsafe { ins.flush_raw(ptr::null(), 0, tag.as_ptr()) };
    assert_eq!(code, FLB_ERROR);
    assert!(has_log("[t-raw] flush tag=raw.tag size=0 data=null"));
    let data = chunk();
    // SAFETY: valid data, NULL tag.
    let code = unsafe { ins.flush_raw(data.as_ptr(), data.len(), ptr::null()) };
    assert_eq!(code, FLB_ERROR);
    assert!(has_log("[t-raw] flush tag=(null)"));
    // SAFETY: as above, on the engine thread's coroutine.
    let r = unsafe {
        ins.flush_raw_with(
            data.as_ptr(),
            data.len(),
            tag.as_ptr(),
            &FlushOptions::engine(),
        )
    };
    assert_eq!(r.code, FLB_OK);
    // an empty chunk through the normal path
    assert_eq!(ins.flush(&[], "empty"), FLB_ERROR);
}

#[test]
fn concurrent_flushes_of_one_instance() {
    let plugin = Plugin::load(echo_plugin("concurrent")).unwrap();
    let ins = plugin
        .init(&[("label", "t-conc"), ("sleep_ms", "200")])
        .unwrap();
    let data = chunk();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..6)
            .map(|i| {
                let (ins, data) = (&ins, &data);
                s.spawn(move || {
                    if i % 2 == 0 {
                        ins.flush(data, &format!("c{i}"))
                    } else {
                        ins.flush_coro(data, &format!("c{i}")).code
                    }
                })
            })
            .collect();
        for h in handles {
            assert_eq!(h.join().unwrap(), FLB_OK);
        }
    });
    assert!(echo_stat(&plugin, "echo_max_inflight") >= 2);
    assert_eq!(ins.exit(), FLB_OK);
    assert!(has_log("[t-conc] exit flushes=6"));
}

#[test]
fn two_instances_in_one_process() {
    let plugin = Plugin::load(echo_plugin("two")).unwrap();
    let a = plugin.init(&[("label", "t-two-a")]).unwrap();
    let b = plugin
        .init(&[("label", "t-two-b"), ("result", "retry")])
        .unwrap();
    assert_eq!((a.name(), b.name()), ("echo.0", "echo.1"));
    assert_ne!(a.remote_context(), b.remote_context());
    assert_ne!(a.o_ins(), b.o_ins());
    assert_eq!(plugin.live_instances(), 2);
    assert_eq!(a.flush(&chunk(), "a"), FLB_OK);
    assert_eq!(b.flush(&chunk(), "b"), FLB_RETRY);
    assert_eq!(b.flush(&chunk(), "b"), FLB_RETRY);
    assert_eq!(a.exit(), FLB_OK);
    assert!(has_log("[t-two-a] exit flushes=1"));
    // b still works after a exited
    assert_eq!(b.flush_on_engine_thread(&chunk(), "b"), FLB_RETRY);
    assert_eq!(b.exit(), FLB_OK);
    assert!(has_log("[t-two-b] exit flushes=3"));
    assert_eq!(echo_stat(&plugin, "echo_exit_count"), 2);
}

#[test]
fn exit_sequence_and_stale_o_ins() {
    let plugin = Plugin::load(echo_plugin("exit")).unwrap();
    let ins = plugin.init(&[("label", "t-exit")]).unwrap();
    assert_eq!(echo_stat(&plugin, "echo_pre_run_arg"), 0);
    let o_ins = ins.o_ins();
    assert_eq!(ins.exit(), FLB_OK);
    assert_eq!(echo_stat(&plugin, "echo_pre_exit_arg"), 0);
    assert_eq!(echo_stat(&plugin, "echo_exit_count"), 1);
    assert!(has_log("[t-exit] exit flushes=0"));

    // a plugin calling the API with an exited o_ins is reported, not served
    let api = host_api();
    let key = CString::new("label").unwrap();
    // SAFETY: the host's own function; it does not dereference unknown o_ins.
    let v = unsafe { (api.output_get_property.unwrap())(key.as_ptr(), o_ins) };
    assert!(v.is_null());
    assert!(violations()
        .iter()
        .any(|v| v.contains("output_get_property") && v.contains(&format!("{o_ins:p}"))));

    // dropping an instance that was not exited runs the exit sequence
    let ins = plugin.init(&[("label", "t-exit-drop")]).unwrap();
    drop(ins);
    assert_eq!(echo_stat(&plugin, "echo_exit_count"), 2);
    assert!(has_log("[t-exit-drop] exit flushes=0"));
}

#[test]
fn cmt_instance_hook() {
    let plugin = Plugin::load(echo_plugin("cmt")).unwrap();
    let mut fake = 0u64;
    let opts = InitOptions {
        cmt_instance: (&mut fake as *mut u64).cast(),
        ..InitOptions::default()
    };
    let ins = plugin.init_with(&[("label", "t-cmt")], &opts).unwrap();
    assert!(has_log("[t-cmt] init result=1 cmt=set"));
    assert_eq!(ins.cmt_instance(), opts.cmt_instance);
    ins.exit();
}

#[test]
fn unload_and_reload_three_times() {
    let path = echo_plugin("reload");
    for round in 0..3 {
        let plugin = Plugin::load(&path).unwrap();
        assert!(Plugin::is_mapped(&path));
        // static state starts fresh: the previous dlclose really unloaded it
        assert_eq!(
            echo_stat(&plugin, "echo_register_count"),
            1,
            "round {round}"
        );
        let label = format!("t-reload-{round}");
        let ins = plugin.init(&[("label", &label)]).unwrap();
        assert_eq!(ins.name(), "echo.0");
        assert_eq!(ins.flush_coro(&chunk(), "r").code, FLB_OK);
        assert_eq!(ins.exit(), FLB_OK);
        plugin.unload().unwrap();
        assert!(!Plugin::is_mapped(&path), "round {round}");
    }
}

#[test]
fn unload_waits_for_live_instances() {
    let path = echo_plugin("alive");
    let plugin = Plugin::load(&path).unwrap();
    let ins = plugin.init(&[("label", "t-alive")]).unwrap();
    match plugin.unload() {
        Err(HostError::InstancesAlive(1)) => {}
        other => panic!("unexpected {other:?}"),
    }
    assert!(Plugin::is_mapped(&path));
    assert_eq!(ins.flush(&chunk(), "still"), FLB_OK);
    drop(ins);
    assert!(!Plugin::is_mapped(&path));
}

#[test]
fn hot_reload_overlapping_generations() {
    let path = echo_plugin("hot");
    let config = HostConfig {
        enable_hot_reload: true,
        ..HostConfig::default()
    };
    let old = Plugin::load_with(&path, config.clone()).unwrap();
    let old_ins = old.init(&[("label", "t-hot-old")]).unwrap();
    assert_eq!(echo_stat(&old, "echo_pre_run_arg"), 1);

    // SIGHUP: new registration first (same mapping), then old exit, then new init
    let new = Plugin::load_with(
        &path,
        HostConfig {
            hot_reloading: true,
            ..config
        },
    )
    .unwrap();
    assert_eq!(echo_stat(&new, "echo_register_count"), 2);
    assert_eq!(echo_stat(&new, "echo_pre_register_arg"), 1);
    assert_eq!(old_ins.exit_with(true), FLB_OK);
    assert_eq!(echo_stat(&new, "echo_pre_exit_arg"), 1);
    let new_ins = new.init(&[("label", "t-hot-new")]).unwrap();
    assert_eq!(new_ins.name(), "echo.0");
    old.unload().unwrap();
    assert!(Plugin::is_mapped(&path));
    assert_eq!(echo_stat(&new, "echo_unregister_count"), 1);
    assert_eq!(new_ins.flush(&chunk(), "h"), FLB_OK);
    assert_eq!(new_ins.exit(), FLB_OK);
    new.unload().unwrap();
    assert!(!Plugin::is_mapped(&path));
}
