//! Issue 4, scenario 4: streams found by prefix join and leave during a run.
//!
//! `emulate` with logs-0..3 (2 MiB/s each); the plugin has only
//! `delivery_stream_prefix logs-`, `discovery_interval 5s` and the true quota; replay
//! offers 12 MiB/s of 1 KiB records (more than 5 streams take). At t = 11 s logs-4 is
//! created through the emulator's admin API (`POST /admin/streams`), at t = 24 s logs-1
//! is deleted (`DELETE /admin/streams/logs-1`). Reported: when logs-4 first carries
//! traffic (target: within one discovery interval), throughput in each phase as % of
//! the streams then present, calls still sent to the deleted stream, and records lost
//! and duplicated (target 0 and 0, by `seq` in the output folder, which keeps what the
//! deleted stream had accepted).
//!
//! `cargo bench -p firehose-fanout-cli --bench discovery`

mod common;

use std::fmt::Write as _;
use std::time::Duration;

use common::*;

const QUOTA: f64 = 2.0 * MIB;
const RECORD: u64 = 1024;
const INTERVAL_S: f64 = 5.0;
const CREATE_AT: f64 = 11.0;
const DELETE_AT: f64 = 24.0;

fn main() -> anyhow::Result<()> {
    let machine_at_start = print_machine(
        "issue 4 / scenario 4: discovery by prefix, a stream created and one deleted mid-run",
    );
    let load_before = load_text();
    let out = scratch("discovery");
    let emu = Emu::start(args![
        "--streams",
        4,
        "--quota-bytes",
        "2MiB",
        "--out",
        out.display(),
        "--keep-records",
        0,
    ])?;
    let records: u64 = 300_000;
    let rate = 12.0 * MIB / RECORD as f64;
    let sampler = StatsSampler::start(&emu.endpoint, Duration::from_millis(500));
    let a = args![
        "--generate",
        records,
        "--record-size",
        RECORD,
        "--rate",
        rate,
        "--retry-limit",
        "no_limits",
        "-v",
        "-p",
        format!("endpoint={}", emu.endpoint),
        "-p",
        "region=us-east-1",
        "-p",
        "delivery_stream_prefix=logs-",
        "-p",
        "discovery_interval=5s",
        "-p",
        "stream_bytes_per_second=2MiB",
    ];
    let p = spawn_replay(&a, false)?;
    let t0 = unix_now();

    sleep_until(t0 + CREATE_AT);
    let before_create = emu.stats()?;
    emu.admin(
        "POST",
        "/admin/streams",
        Some(&json!({"name": "logs-4", "quota": {"bytes_per_second": QUOTA}}).to_string()),
    )?;
    let created = unix_now();
    let mut first_call = None;
    let mut first_accept = None;
    while unix_now() < created + 3.0 * INTERVAL_S {
        let s = emu.stats()?;
        if let Some(st) = s.streams.get("logs-4") {
            if first_call.is_none() && st.requests > 0 {
                first_call = Some(unix_now() - created);
            }
            if st.accepted_records > 0 {
                first_accept = Some(unix_now() - created);
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }

    sleep_until(t0 + DELETE_AT);
    let before_delete = emu.stats()?;
    emu.admin("DELETE", "/admin/streams/logs-1", None)?;
    let deleted = unix_now();
    let r = p.wait()?;
    let end = emu.stats()?;
    let snaps = sampler.finish();
    emu.flush()?;
    let mut seqs = SeqCount::new(records);
    let mut per_stream_lines = std::collections::BTreeMap::<String, u64>::new();
    scan_output(&out, |l| {
        seqs.add(l.seq);
        *per_stream_lines.entry(l.stream.to_string()).or_default() += 1;
    })?;
    emu.stop();
    let _ = std::fs::remove_dir_all(&out);
    let load_after = load_text();

    let mut all: Vec<&Stats> = snaps.iter().map(|(_, s)| s).collect();
    all.push(&before_create);
    all.push(&before_delete);
    all.push(&end);
    let merged = merged_series(&all);
    let series = total_series(&merged);
    let joined = created + first_accept.unwrap_or(INTERVAL_S);
    let phases = [
        ("logs-0..3 (4 streams)", t0 + 2.0, created, 4.0),
        (
            "logs-0..4 after logs-4 joined (5)",
            joined + 1.0,
            deleted,
            5.0,
        ),
        (
            "after logs-1 was deleted (4)",
            deleted + 2.0,
            r.exited - 1.0,
            4.0,
        ),
    ];
    let mut rows = Vec::new();
    let mut phase_json = Vec::new();
    for (name, from, to, n) in phases {
        let (f, t) = (from.ceil() as u64, to.floor() as u64);
        let rate = mean_rate(&series, f, t);
        let cap = n * QUOTA;
        rows.push(vec![
            name.to_string(),
            format!("{:.0}..{:.0} s", f as f64 - t0, t as f64 - t0),
            mib(rate),
            mib(cap),
            pct(rate / cap),
        ]);
        phase_json.push(json!({"phase": name, "from_elapsed": f as f64 - t0, "to_elapsed": t as f64 - t0, "bytes_per_second": rate, "capacity": cap}));
    }
    let rejected_after_delete = end
        .rejected_requests
        .saturating_sub(before_delete.rejected_requests);
    let (lost, dup) = (seqs.lost(), seqs.duplicated());
    println!("phases (throughput from the emulator's per-second series):");
    emit_table(
        "discovery-phases",
        &["phase", "window", "MiB/s", "capacity MiB/s", "of capacity"],
        &rows,
    );
    let ok = first_accept.is_some_and(|d| d <= INTERVAL_S) && lost == 0 && dup == 0;
    let rows = vec![vec![
        format!("{:.0} s", INTERVAL_S),
        first_call.map_or("never".into(), |d| format!("{d:.1} s")),
        first_accept.map_or("never".into(), |d| format!("{d:.1} s")),
        int(rejected_after_delete),
        int(r.u("records_acked")),
        int(lost),
        int(dup),
        int(r.u("flb_retry")),
        met(ok),
        format!("{load_before} → {load_after}"),
    ]];
    emit_table(
        "discovery",
        &[
            "discovery_interval",
            "logs-4: first call after creation",
            "first record accepted",
            "calls to logs-1 after deletion",
            "records acked",
            "lost",
            "duplicated",
            "FLB_RETRY",
            "targets (≤ 1 interval, 0 lost)",
            "load before → after",
        ],
        &rows,
    );
    let warn: Vec<String> = r
        .stderr
        .iter()
        .filter(|(_, l)| l.contains("logs-1") || l.contains("logs-4") || l.contains("discover"))
        .map(|(t, l)| format!("{:+.1} s {l}", t - t0))
        .collect();
    for w in &warn {
        println!("  plugin: {w}");
    }

    let start = t0.floor() as u64;
    let names: Vec<String> = merged.keys().cloned().collect();
    let mut csv = format!("elapsed_s,{},total\n", names.join(","));
    for t in start..=r.exited as u64 {
        let _ = write!(csv, "{}", t - start);
        for n in &names {
            let _ = write!(csv, ",{}", merged[n].get(&t).map_or(0, |x| x.0));
        }
        let _ = writeln!(csv, ",{}", series.get(&t).copied().unwrap_or(0));
    }
    write_text("discovery.csv", &csv)?;
    let path = write_json(
        "discovery.json",
        &json!({
            "machine": machine_at_start,
            "discovery_interval_s": INTERVAL_S,
            "created_at_elapsed": created - t0,
            "deleted_at_elapsed": deleted - t0,
            "first_call_after_s": first_call,
            "first_accept_after_s": first_accept,
            "phases": phase_json,
            "calls_to_deleted_stream": rejected_after_delete,
            "lost": lost,
            "duplicated": dup,
            "lines_per_stream": per_stream_lines,
            "plugin_lines": warn,
            "load_before": load_before,
            "load_after": load_after,
            "replay": r.summary,
        }),
    )?;
    println!("raw results: {} (timeline: discovery.csv)", path.display());
    Ok(())
}
