//! Issue 12, part 2: a stream whose real quota is above the default is learned upward.
//!
//! One stream of 20 MiB/s in a separate `firehose-fanout emulate` process (a quota AWS
//! raised); the plugin at its defaults (`stream_bytes_per_second` unset: 5 MiB/s is a
//! starting estimate); replay feeds ~275 MB of the bundled Kubernetes records (`--sample`,
//! ~1 KB each, every one with a distinct `demo_id`) as fast as the plugin takes them.
//! Reported: delivered MiB/s per second and after the first 10 s (target ≥ 80 % of
//! 20 MiB/s), throttled share, records lost and duplicated (by `demo_id` in the emulator's
//! output folder). A second row sets `stream_bytes_per_second 5MiB` explicitly (a hard
//! cap: ~25 % of the stream, with a quarter of the records). Timelines go to
//! target/bench-results/probing-*.csv.
//!
//! `cargo bench -p firehose-fanout-cli --bench probing`

mod common;

use std::fmt::Write as _;
use std::time::Duration;

use common::*;

const TRUE_QUOTA: f64 = 20.0 * MIB;
/// ~275 MB of the sample's records (~925 bytes each as delivered).
const RECORDS: u64 = 297_000;
const AFTER_S: usize = 10;
const TARGET: f64 = 0.80;

/// `..."demo_id":123...` → 123.
fn demo_id(line: &[u8]) -> Option<u64> {
    let key = b"\"demo_id\":";
    let at = line.windows(key.len()).position(|w| w == key)? + key.len();
    let rest = &line[at..];
    let end = rest
        .iter()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(rest.len());
    std::str::from_utf8(&rest[..end]).ok()?.parse().ok()
}

fn main() -> anyhow::Result<()> {
    let machine_at_start = print_machine(
        "issue 12 / part 2: 1 stream of 20 MiB/s, plugin default (5 MiB/s as a starting estimate)",
    );
    let mut rows = Vec::new();
    let mut results = Vec::new();
    for (label, tag, records, props) in [
        ("default (unset: probed)", "default", RECORDS, vec![]),
        (
            "stream_bytes_per_second 5MiB (set: hard cap)",
            "capped",
            RECORDS / 4,
            vec!["-p".to_string(), "stream_bytes_per_second=5MiB".to_string()],
        ),
    ] {
        let load_before = load_text();
        let out = scratch(&format!("probing-{tag}"));
        let emu = Emu::start(args![
            "--streams",
            1,
            "--quota-bytes",
            "20MiB",
            "--out",
            out.display(),
            "--keep-records",
            0,
            "--buffer-size",
            8,
        ])?;
        let names = emu.streams.clone();
        let sampler = StatsSampler::start(&emu.endpoint, Duration::from_millis(250));
        let mut a = args!["--sample", records, "--retry-limit", "no_limits", "-v"];
        a.extend(props);
        a.extend(endpoint_props(&emu, &names));
        let r = replay(&a, false)?;
        let end = emu.stats()?;
        let snaps = sampler.finish();
        emu.flush()?;
        let mut ids = SeqCount::new(records);
        // The sample's records are told apart by demo_id (their own `seq` repeats).
        scan_output(&out, |l| ids.add(demo_id(l.raw)))?;
        emu.stop();
        let _ = std::fs::remove_dir_all(&out);
        let load_after = load_text();

        let start = r.spawned.floor() as u64;
        let last = r.exited.floor() as u64; // partial: left out
        let mut all: Vec<&Stats> = snaps.iter().map(|(_, s)| s).collect();
        all.push(&end);
        let per_stream = merged_series(&all);
        let mut csv = String::from("elapsed_s,delivered_bytes,quota\n");
        let mut totals = Vec::new();
        for t in start..last {
            let b: u64 = names
                .iter()
                .filter_map(|n| per_stream.get(n).and_then(|m| m.get(&t)))
                .map(|x| x.0)
                .sum();
            totals.push(b as f64);
            let _ = writeln!(csv, "{},{b},{TRUE_QUOTA}", t - start);
        }
        write_text(&format!("probing-{tag}.csv"), &csv)?;
        let mean = |xs: &[f64]| xs.iter().sum::<f64>() / xs.len().max(1) as f64;
        let after: &[f64] = totals.get(AFTER_S..).unwrap_or(&[]);
        let first_80 = totals.iter().position(|b| *b >= TARGET * TRUE_QUOTA);
        let d = |f: fn(&StreamStats) -> u64| total(&end, f);
        let (thr, acc) = (d(|s| s.throttled_records), d(|s| s.accepted_records));
        let thr_share = thr as f64 / (thr + acc).max(1) as f64;
        let delivered: u64 = d(|s| s.accepted_bytes);
        let (lost, dup) = (ids.lost(), ids.duplicated());
        let ok = !after.is_empty() && mean(after) >= TARGET * TRUE_QUOTA && lost == 0 && dup == 0;
        rows.push(vec![
            label.to_string(),
            mb(delivered as f64),
            format!("{} s", totals.len()),
            first_80.map_or("never".into(), |t| format!("{t} s")),
            mib(mean(&totals)),
            if after.is_empty() {
                "n/a".into()
            } else {
                format!("{} ({})", mib(mean(after)), pct(mean(after) / TRUE_QUOTA))
            },
            pct(thr_share),
            int(lost),
            int(dup),
            if tag == "default" {
                met(ok)
            } else {
                "—".into()
            },
            format!("{load_before} → {load_after}"),
        ]);
        results.push(json!({
            "label": label,
            "timeline": format!("probing-{tag}.csv"),
            "true_quota_bytes_per_second": TRUE_QUOTA,
            "records": records,
            "delivered_bytes": delivered,
            "seconds": totals.len(),
            "first_second_at_80_percent": first_80,
            "mean_bytes_per_second": mean(&totals),
            "mean_bytes_per_second_after_10s": mean(after),
            "throttled_firehose_records": thr,
            "accepted_firehose_records": acc,
            "throttled_share": thr_share,
            "lost": lost,
            "duplicated": dup,
            "unexpected_lines": ids.unexpected,
            "per_second_total": totals,
            "load_before": load_before,
            "load_after": load_after,
            "replay": r.summary,
        }));
    }
    let headers = [
        "plugin quota",
        "delivered",
        "seconds",
        "first second ≥ 80 %",
        "MiB/s, whole run",
        "MiB/s after 10 s",
        "throttled records",
        "lost",
        "duplicated",
        "target ≥ 80 % after 10 s, 0 lost",
        "load before → after",
    ];
    emit_table("probing", &headers, &rows);
    let path = write_json(
        "probing.json",
        &json!({"machine": machine_at_start, "runs": results}),
    )?;
    println!("raw results: {} (timelines: probing-*.csv)", path.display());
    Ok(())
}
