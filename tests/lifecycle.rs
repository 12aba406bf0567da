//! Life cycle of the library in one process: the shared runtime's threads exist only
//! while instances do, and the library unloads and reloads cleanly (Fluent Bit's hot reload).
//! Alone in its own test binary, so no other test's instance keeps the runtime alive.

mod common;

use firehose_emulator::{Emulator, EmulatorConfig, StreamSpec};
use flb_host::chunk::{ChunkBuilder, EventTime};
use flb_host::{Plugin, FLB_OK};
use serde_json::json;

fn chunk(first: u64, n: u64) -> Vec<u8> {
    let mut b = ChunkBuilder::new();
    for seq in first..first + n {
        b.push_v2(
            EventTime {
                sec: 1_764_000_000,
                nsec: 0,
            },
            &json!({}),
            &json!({"seq": seq}),
        );
    }
    b.finish()
}

fn plugin_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|n| n.starts_with("firehose-fanout"))
        .count()
}

#[test]
fn threads_stop_after_the_last_instance_exits_and_reload_delivers_everything() {
    common::test_env();
    let emu = Emulator::start(EmulatorConfig {
        streams: vec![StreamSpec::new("a")],
        ..Default::default()
    })
    .expect("emulator");
    let ep = emu.endpoint();
    let props = [
        ("region", "us-east-1"),
        ("endpoint", ep.as_str()),
        ("delivery_streams", "a"),
    ];
    let plugin = Plugin::load(common::plugin_path()).expect("load");
    let a = plugin.init(&props).expect("init");
    let b = plugin.init(&props).expect("init");
    assert!(plugin_threads() > 0);
    assert_eq!(a.flush(&chunk(0, 10), "t"), FLB_OK);
    assert_eq!(a.exit(), FLB_OK);
    assert!(plugin_threads() > 0, "the other instance still runs");
    assert_eq!(b.flush(&chunk(10, 10), "t"), FLB_OK);
    assert_eq!(b.exit(), FLB_OK);
    assert_eq!(
        plugin_threads(),
        0,
        "no plugin thread left after the last exit"
    );
    plugin.unload().expect("unload");

    // Hot reload, 20 times: the new registration comes before the old instance exits,
    // then the old handle is closed.
    let mut old_plugin = Plugin::load(common::plugin_path()).expect("load");
    let mut old = old_plugin.init(&props).expect("init");
    let mut next = 20u64;
    for _ in 0..20 {
        let new_plugin = Plugin::load(common::plugin_path()).expect("reload");
        assert_eq!(old.flush(&chunk(next, 5), "t"), FLB_OK);
        next += 5;
        assert_eq!(old.exit(), FLB_OK);
        let new = new_plugin.init(&props).expect("init after reload");
        old_plugin.unload().expect("unload old");
        assert_eq!(new.flush(&chunk(next, 5), "t"), FLB_OK);
        next += 5;
        old_plugin = new_plugin;
        old = new;
    }
    assert_eq!(old.exit(), FLB_OK);
    old_plugin.unload().expect("unload");
    assert_eq!(plugin_threads(), 0);
    // The library pins itself: after the last dlclose it stays mapped, so nothing of it can
    // run in unmapped memory, and its statics stay reachable (no leak per unload).
    assert!(
        Plugin::is_mapped(common::plugin_path()),
        "pinned with RTLD_NODELETE"
    );

    let mut seen: Vec<u64> = emu
        .records("a")
        .iter()
        // aggregated Firehose records hold several JSON lines
        .flat_map(|r| {
            r.split(|&b| b == b'\n')
                .filter(|l| !l.is_empty())
                .map(|l| {
                    serde_json::from_slice::<serde_json::Value>(l).unwrap()["seq"]
                        .as_u64()
                        .unwrap()
                })
                .collect::<Vec<_>>()
        })
        .collect();
    seen.sort_unstable();
    assert_eq!(
        seen,
        (0..next).collect::<Vec<_>>(),
        "every record once across reloads"
    );
}
