//! Issue 4, scenario 3: many nodes share the same streams.
//!
//! One `emulate` process with 4 streams of 5 MiB/s; 4 `replay` processes (4 "nodes",
//! each its own plugin instance that believes it has 5 MiB/s per stream), each offered
//! 10 MiB/s of ~1 KiB records, so together they offer twice the capacity. Reported:
//! aggregate throughput as % of capacity (target ≥ 85 %) and Jain's fairness index over
//! the 4 nodes' delivered throughput (target ≥ 0.9), plus records lost/duplicated.
//!
//! How a node's records are told apart at the emulator: node i generates records of
//! 1021 + i bytes, so the length of a delivered line names its node. The emulator writes
//! an object every 1 MiB per stream (~0.2 s at 5 MiB/s), named with the second of its
//! first record, which gives each node's delivered bytes per second. Throughput and
//! fairness are taken over the window in which all 4 nodes run (from the last start
//! + 3 s to the first node's last flush − 1 s); over each node's whole run too.
//!
//! `cargo bench -p firehose-fanout-cli --bench nodes`

mod common;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use common::*;

const NODES: usize = 4;
const STREAMS: usize = 4;
const QUOTA: f64 = 5.0 * MIB;
const SECONDS: f64 = 40.0;

fn size_of(node: usize) -> u64 {
    1021 + node as u64
}

fn main() -> anyhow::Result<()> {
    let machine_at_start =
        print_machine("issue 4 / scenario 3: 4 replay processes × the same 4 streams of 5 MiB/s");
    let capacity = STREAMS as f64 * QUOTA;
    let load_before = load_text();
    let out = scratch("nodes");
    let emu = Emu::start(args![
        "--streams",
        STREAMS,
        "--quota-bytes",
        "5MiB",
        "--out",
        out.display(),
        "--keep-records",
        0,
        "--buffer-size",
        1,
        "--buffer-interval",
        "1s",
    ])?;
    let names = emu.streams.clone();
    let sampler = StatsSampler::start(&emu.endpoint, Duration::from_secs(1));
    let mut procs = Vec::new();
    let mut records = Vec::new();
    for node in 0..NODES {
        let size = size_of(node);
        let n = (capacity / NODES as f64 * SECONDS / size as f64) as u64;
        let rate = 10.0 * MIB / size as f64;
        records.push(n);
        let mut a = args![
            "--generate",
            n,
            "--record-size",
            size,
            "--rate",
            rate,
            "--retry-limit",
            "no_limits",
            "-v",
        ];
        a.extend(endpoint_props(&emu, &names));
        procs.push(spawn_replay(&a, false)?);
    }
    // Wait for all at once, so each exit time is taken when that process ends.
    let waiters: Vec<_> = procs
        .into_iter()
        .map(|p| std::thread::spawn(move || p.wait()))
        .collect();
    let mut outs = Vec::new();
    for w in waiters {
        outs.push(
            w.join()
                .map_err(|_| anyhow::anyhow!("a waiter thread panicked"))??,
        );
    }
    let end = emu.stats()?;
    let snaps = sampler.finish();
    emu.flush()?;
    let mut seqs: Vec<SeqCount> = records.iter().map(|n| SeqCount::new(*n)).collect();
    let mut per_node: Vec<BTreeMap<u64, u64>> = vec![BTreeMap::new(); NODES];
    let mut stray = 0u64;
    scan_output(&out, |l| {
        match (0..NODES).find(|i| size_of(*i) as usize == l.len) {
            Some(i) => {
                seqs[i].add(l.seq);
                *per_node[i].entry(l.object_time).or_default() += l.len as u64;
            }
            None => stray += 1,
        }
    })?;
    emu.stop();
    let _ = std::fs::remove_dir_all(&out);
    let load_after = load_text();

    let from = outs.iter().map(|o| o.spawned).fold(0.0, f64::max).ceil() as u64 + 3;
    // A node's last flush ends at spawn + replay's elapsed (its process may exit later).
    let done_at = |o: &ReplayOut| o.spawned + o.f("elapsed_seconds");
    let to = outs.iter().map(done_at).fold(f64::MAX, f64::min).floor() as u64 - 1;
    let mut all: Vec<&Stats> = snaps.iter().map(|(_, s)| s).collect();
    all.push(&end);
    let series = total_series(&merged_series(&all));
    let aggregate = mean_rate(&series, from, to);
    let in_window: Vec<f64> = per_node.iter().map(|m| mean_rate(m, from, to)).collect();
    let whole_run: Vec<f64> = outs
        .iter()
        .enumerate()
        .map(|(i, o)| {
            o.u("records_acked") as f64 * size_of(i) as f64 / o.f("elapsed_seconds").max(1e-9)
        })
        .collect();
    let (jain_window, jain_whole) = (jain(&in_window), jain(&whole_run));
    let first = outs.iter().map(|o| o.spawned).fold(f64::MAX, f64::min);
    let last = outs.iter().map(|o| o.exited).fold(0.0, f64::max);
    let total_bytes: u64 = series
        .range(first as u64..=last as u64 + 1)
        .map(|(_, b)| b)
        .sum();
    let overall = total_bytes as f64 / (last - first);

    let mut rows = Vec::new();
    for (i, o) in outs.iter().enumerate() {
        rows.push(vec![
            format!("node {i} ({} B records)", size_of(i)),
            int(records[i]),
            int(o.u("records_acked")),
            format!("{:.1} s", o.f("elapsed_seconds")),
            mib(in_window[i]),
            mib(whole_run[i]),
            int(seqs[i].lost()),
            int(seqs[i].duplicated()),
            int(o.u("flb_retry")),
        ]);
    }
    let headers = [
        "node",
        "records",
        "acked",
        "elapsed",
        "MiB/s (all running)",
        "MiB/s (whole run)",
        "lost",
        "duplicated",
        "FLB_RETRY",
    ];
    println!(
        "per node (window with all 4 running: {} s):",
        to.saturating_sub(from)
    );
    emit_table("nodes-per-node", &headers, &rows);
    let lost: u64 = seqs.iter().map(SeqCount::lost).sum();
    let dup: u64 = seqs.iter().map(SeqCount::duplicated).sum();
    let ok = aggregate / capacity >= 0.85 && jain_window >= 0.9 && lost == 0 && dup == 0;
    let thr = total(&end, |s| s.throttled_records);
    let acc = total(&end, |s| s.accepted_records);
    let summary_rows = vec![vec![
        "4 nodes × 4 streams".to_string(),
        format!("{} s", to.saturating_sub(from)),
        mib(aggregate),
        pct(aggregate / capacity),
        pct(overall / capacity),
        format!("{jain_window:.3}"),
        format!("{jain_whole:.3}"),
        pct(thr as f64 / (thr + acc).max(1) as f64),
        int(lost),
        int(dup),
        met(ok),
        format!("{load_before} → {load_after}"),
    ]];
    let headers = [
        "setup",
        "window",
        "aggregate MiB/s",
        "of capacity (all running)",
        "of capacity (first start → last exit)",
        "Jain (all running)",
        "Jain (whole runs)",
        "throttled records",
        "lost",
        "duplicated",
        "targets ≥ 85 %, ≥ 0.9",
        "load before → after",
    ];
    emit_table("nodes", &headers, &summary_rows);
    if stray > 0 {
        println!("{stray} delivered lines of no node's length");
    }

    let start = first.floor() as u64;
    let mut csv = String::from("elapsed_s");
    for i in 0..NODES {
        let _ = write!(csv, ",node{i}");
    }
    csv.push_str(",total\n");
    for t in start..=last as u64 {
        let _ = write!(csv, "{}", t - start);
        for m in &per_node {
            let _ = write!(csv, ",{}", m.get(&t).copied().unwrap_or(0));
        }
        let _ = writeln!(csv, ",{}", series.get(&t).copied().unwrap_or(0));
    }
    write_text("nodes.csv", &csv)?;
    let path = write_json(
        "nodes.json",
        &json!({
            "machine": machine_at_start,
            "capacity_bytes_per_second": capacity,
            "window_unix": [from, to],
            "window_start_elapsed_s": from as f64 - first,
            // The same window in the seconds of nodes.csv (which counts from the first start).
            "window_elapsed_csv": [from - first.floor() as u64, to - first.floor() as u64],
            "aggregate_bytes_per_second": aggregate,
            "aggregate_ratio": aggregate / capacity,
            "overall_ratio": overall / capacity,
            "jain_window": jain_window,
            "jain_whole_run": jain_whole,
            "per_node_bytes_per_second_window": in_window,
            "per_node_bytes_per_second_whole_run": whole_run,
            "lost": lost,
            "duplicated": dup,
            "throttled_firehose_records": thr,
            "accepted_firehose_records": acc,
            "load_before": load_before,
            "load_after": load_after,
            "replays": outs.iter().map(|o| o.summary.clone()).collect::<Vec<_>>(),
            "spawned_exited_done_elapsed": outs.iter().map(|o| json!([o.spawned - first, o.exited - first, done_at(o) - first])).collect::<Vec<_>>(),
        }),
    )?;
    println!("raw results: {} (timeline: nodes.csv)", path.display());
    Ok(())
}
