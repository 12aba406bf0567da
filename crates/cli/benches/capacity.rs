//! Issue 4, scenario 1: streams as capacity.
//!
//! 4 streams of 5 MiB/s each in a separate `firehose-fanout emulate` process, offered
//! twice that (40 MiB/s of 1 KiB records, `replay --rate 40960`) for about 36 s:
//! sustained delivered throughput as % of 4 × quota (target ≥ 90 %), records lost and
//! duplicated (0 and 0, by the generated records' `seq` in the emulator's output folder),
//! throttling after the first 2 s (target ≤ 5 %; `/stats` sampled at t = 2 s and at the
//! end).
//!
//! Run twice: the emulator's default throttling (the records over quota fail one by one
//! inside an accepted PutRecordBatch, as Firehose's per-record `ErrorCode`) and
//! `--quota-whole-request` (a call over quota fails whole with
//! ServiceUnavailableException), where the emulator counts throttled requests exactly.
//!
//! `cargo bench -p firehose-fanout-cli --bench capacity`

mod common;

use common::*;

const STREAMS: usize = 4;
const QUOTA: f64 = 5.0 * MIB;
const RECORD: u64 = 1024;
const SECONDS: f64 = 36.0;

fn main() -> anyhow::Result<()> {
    let machine_at_start = print_machine(
        "issue 4 / scenario 1: 4 streams × 5 MiB/s offered 40 MiB/s of 1 KiB records",
    );
    let capacity = STREAMS as f64 * QUOTA;
    let records = (capacity * SECONDS / RECORD as f64) as u64;
    let rate = 2.0 * capacity / RECORD as f64;
    let mut rows = Vec::new();
    let mut results = Vec::new();
    for whole in [false, true] {
        let mode = if whole { "whole-request" } else { "per-record" };
        let load_before = load_text();
        let out = scratch(&format!("capacity-{mode}"));
        let mut emu_args = args![
            "--streams",
            STREAMS,
            "--quota-bytes",
            "5MiB",
            "--out",
            out.display(),
            "--keep-records",
            0,
            "--buffer-size",
            8,
        ];
        if whole {
            emu_args.push("--quota-whole-request".into());
        }
        let emu = Emu::start(emu_args)?;
        let streams = emu.streams.clone();
        let sampler = StatsSampler::start(&emu.endpoint, std::time::Duration::from_millis(500));
        let mut a = args![
            "--generate",
            records,
            "--record-size",
            RECORD,
            "--rate",
            rate,
            "--retry-limit",
            "no_limits",
            "--timeline",
            results_dir()
                .join(format!("capacity-{mode}-timeline.csv"))
                .display(),
            "-v",
        ];
        a.extend(endpoint_props(&emu, &streams));
        let proc_ = spawn_replay(&a, false)?;
        let t0 = unix_now();
        sleep_until(t0 + 2.0);
        let at2 = emu.stats()?;
        let r = proc_.wait()?;
        let end = emu.stats()?;
        let snaps = sampler.finish();
        emu.flush()?;
        let mut seqs = SeqCount::new(records);
        let (objects, lines) = scan_output(&out, |l| seqs.add(l.seq))?;
        emu.stop();
        let _ = std::fs::remove_dir_all(&out);
        let load_after = load_text();

        // Sustained throughput: whole seconds from t0 + 2 s to the last whole second
        // before replay ended.
        let mut all: Vec<&Stats> = snaps.iter().map(|(_, s)| s).collect();
        all.push(&end);
        let series = total_series(&merged_series(&all));
        let (from, to) = (t0.ceil() as u64 + 2, r.exited.floor() as u64 - 1);
        let sustained = mean_rate(&series, from, to);
        let d = |f: fn(&StreamStats) -> u64| total(&end, f).saturating_sub(total(&at2, f));
        let requests = d(|s| s.requests);
        let thr_req = d(|s| s.throttled_requests);
        let thr_rec = d(|s| s.throttled_records);
        let accepted_rec = d(|s| s.accepted_records);
        let failed_rec = d(|s| s.failed_records);
        let req_pct = thr_req as f64 / requests.max(1) as f64;
        // Per-record mode: every partly throttled call has ≥ 1 throttled record, so
        // throttled records / calls bounds the share of calls that saw throttling.
        let req_bound = if whole {
            req_pct
        } else {
            (thr_rec as f64 / requests.max(1) as f64).min(1.0)
        };
        let rec_pct = thr_rec as f64 / (accepted_rec + thr_rec).max(1) as f64;
        let ratio = sustained / capacity;
        let (lost, dup) = (seqs.lost(), seqs.duplicated());
        rows.push(vec![
            mode.to_string(),
            format!("{:.1} s", to.saturating_sub(from) as f64),
            mib(sustained),
            pct(ratio),
            int(r.u("records_acked")),
            int(lost),
            int(dup),
            int(requests),
            format!("{}{}", if whole { "" } else { "≤ " }, pct(req_bound)),
            pct(rec_pct),
            int(r.u("flb_retry")),
            format!("{load_before} → {load_after}"),
        ]);
        results.push(json!({
            "mode": mode,
            "records": records,
            "record_bytes": RECORD,
            "offered_records_per_second": rate,
            "capacity_bytes_per_second": capacity,
            "window_unix": [from, to],
            "sustained_bytes_per_second": sustained,
            "sustained_ratio": ratio,
            "lost": lost,
            "duplicated": dup,
            "unexpected_lines": seqs.unexpected,
            "objects": objects,
            "lines": lines,
            "after_2s": {
                "requests": requests,
                "throttled_requests": thr_req,
                "throttled_records": thr_rec,
                "accepted_firehose_records": accepted_rec,
                "failed_records": failed_rec,
                "throttled_request_share": req_pct,
                "throttled_request_share_bound": req_bound,
                "throttled_record_share": rec_pct,
            },
            "per_second_bytes": series.range(t0 as u64..=r.exited as u64 + 1).map(|(t, b)| json!([t, b])).collect::<Vec<_>>(),
            "load_before": load_before,
            "load_after": load_after,
            "replay": r.summary,
            "plugin_stopping_line": r.stopping_line(),
        }));
    }
    println!(
        "capacity {} MiB/s (4 × 5 MiB/s), {} records of {} B offered at {:.0} records/s (2× capacity), sustained over t = 2 s .. end",
        mib(capacity),
        int(records),
        RECORD,
        rate
    );
    let headers = [
        "throttling",
        "window",
        "MiB/s",
        "of capacity",
        "records acked",
        "lost",
        "duplicated",
        "calls after 2 s",
        "throttled calls",
        "throttled records",
        "FLB_RETRY",
        "load (1/5/15 min) before → after",
    ];
    emit_table("capacity", &headers, &rows);
    let ok = results.iter().all(|r| {
        r["sustained_ratio"].as_f64().unwrap_or(0.0) >= 0.90
            && r["lost"] == 0
            && r["duplicated"] == 0
            && r["after_2s"]["throttled_request_share_bound"]
                .as_f64()
                .unwrap_or(1.0)
                <= 0.05
    });
    println!(
        "targets (≥ 90 % of capacity, 0 lost, 0 duplicated, ≤ 5 % throttled calls): {}",
        met(ok)
    );
    let path = write_json(
        "capacity.json",
        &json!({"machine": machine_at_start, "runs": results}),
    )?;
    println!("raw results: {}", path.display());
    Ok(())
}
