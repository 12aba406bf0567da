//! The shipped Fluent Bit configurations (fluent-bit/fluent-bit.conf and .yaml) load through
//! the plugin: their `[OUTPUT]` properties, with `${VAR}`s expanded as Fluent Bit does, make
//! an instance that starts, finds its streams by prefix, and delivers.

mod common;

use firehose_emulator::{Emulator, EmulatorConfig, StreamSpec};
use flb_host::{Plugin, FLB_OK};
use std::collections::BTreeMap;

/// Fluent Bit's `${VAR}` expansion, from a fixed environment.
fn expand(v: &str, env: &BTreeMap<&str, &str>) -> String {
    let mut out = v.to_string();
    for (k, val) in env {
        out = out.replace(&format!("${{{k}}}"), val);
    }
    assert!(!out.contains("${"), "unexpanded variable in {v}");
    out
}

/// The firehose_fanout `[OUTPUT]` section of a classic config: key, value pairs.
fn classic_output(text: &str) -> Vec<(String, String)> {
    let mut props = Vec::new();
    let mut in_ours = false;
    let mut section: Vec<(String, String)> = Vec::new();
    for line in text.lines().map(str::trim).chain(std::iter::once("[END]")) {
        if line.starts_with('[') {
            if in_ours {
                props = section.clone();
            }
            section.clear();
            in_ours = false;
            continue;
        }
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (k, v) = line.split_once(char::is_whitespace).expect("key value");
        if k.eq_ignore_ascii_case("name") && v.trim() == "firehose_fanout" {
            in_ours = true;
        }
        section.push((k.to_string(), v.trim().to_string()));
    }
    props
}

/// The `- name: firehose_fanout` item of the YAML config's outputs (flat keys only).
fn yaml_output(text: &str) -> Vec<(String, String)> {
    let mut props = Vec::new();
    let mut in_ours = false;
    for line in text.lines() {
        let t = line.trim();
        if let Some(item) = t.strip_prefix("- ") {
            in_ours = item.trim() == "name: firehose_fanout";
            if !in_ours {
                continue;
            }
        }
        if !in_ours || t.is_empty() || t.starts_with('#') {
            continue;
        }
        let t = t.trim_start_matches("- ");
        if let Some((k, v)) = t.split_once(':') {
            let v = v.trim().trim_matches('"');
            props.push((k.trim().to_string(), v.to_string()));
        }
    }
    props
}

fn load_and_deliver(props: Vec<(String, String)>, emu: &Emulator) {
    let env = BTreeMap::from([
        ("FIREHOSE_STREAM_PREFIX", "logs-"),
        ("AWS_REGION", "us-east-1"),
    ]);
    let mut p: Vec<(String, String)> = props
        .into_iter()
        .map(|(k, v)| (k, expand(&v, &env)))
        .collect();
    assert!(p
        .iter()
        .any(|(k, v)| k == "delivery_stream_prefix" && v == "logs-"));
    // The test points the instance at the stand-in; the region comes from AWS_REGION in the
    // DaemonSet, given here as the property Fluent Bit would pass with `region`.
    p.push(("endpoint".into(), emu.endpoint()));
    p.push(("region".into(), "us-east-1".into()));
    // The shipped journal lives on the node (/var/fluent-bit/state); here a fresh folder
    // per load, so no run (nor the other file's load) finds this chunk already delivered.
    static LOADS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let journal = std::env::temp_dir().join(format!(
        "ff-configs-load-{}-{}",
        std::process::id(),
        LOADS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&journal);
    let shipped = p.iter_mut().find(|(k, _)| k == "journal_path");
    let shipped = shipped.expect("the shipped configuration sets journal_path");
    shipped.1 = journal.display().to_string();
    let refs: Vec<(&str, &str)> = p.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let plugin = Plugin::load(common::plugin_path()).expect("load");
    let ins = plugin
        .init(&refs)
        .expect("the shipped configuration starts the plugin");
    assert_eq!(
        ins.flush(
            &common::seq_chunk(0, 100, "from the shipped config"),
            "kube.x"
        ),
        FLB_OK
    );
    assert_eq!(ins.exit(), FLB_OK);
    let _ = std::fs::remove_dir_all(&journal);
}

#[test]
fn classic_and_yaml_configs_start_the_plugin_and_deliver() {
    common::test_env();
    let emu = Emulator::start(EmulatorConfig {
        streams: vec![
            StreamSpec::new("logs-0"),
            StreamSpec::new("logs-1"),
            StreamSpec::new("other"),
        ],
        ..Default::default()
    })
    .expect("emulator");
    let root = env!("CARGO_MANIFEST_DIR");
    let classic = classic_output(
        &std::fs::read_to_string(format!("{root}/fluent-bit/fluent-bit.conf")).unwrap(),
    );
    let yaml = yaml_output(
        &std::fs::read_to_string(format!("{root}/fluent-bit/fluent-bit.yaml")).unwrap(),
    );
    assert!(classic.len() > 5 && yaml.len() > 5, "{classic:?} {yaml:?}");
    // The two files configure the plugin alike.
    let keys = |v: &[(String, String)]| {
        let mut k: Vec<String> = v.iter().map(|(k, _)| k.to_ascii_lowercase()).collect();
        k.sort();
        k
    };
    assert_eq!(keys(&classic), keys(&yaml));
    load_and_deliver(classic, &emu);
    load_and_deliver(yaml, &emu);
    let mut seen = BTreeMap::new();
    for s in ["logs-0", "logs-1"] {
        for r in emu.records(s) {
            common::count_seqs(&r, &mut seen);
        }
    }
    assert!(emu.records("other").is_empty(), "only the prefix's streams");
    assert_eq!(seen.len(), 100);
    assert!(
        seen.values().all(|&c| c == 2),
        "each config delivered every record once"
    );
}
