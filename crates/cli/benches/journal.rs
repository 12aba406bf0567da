//! Issue 12: what the journal of accepted records (`journal_path`) costs.
//!
//! `emulate` with 4 streams and no quota; `replay` of the same generated records through
//! the plugin (sync mode, 2 workers, the default aggregation) with the journal off, on with
//! the default group commit (`journal_sync_interval 1s`), and on with an `fdatasync` after
//! every entry (`journal_sync_interval 0`). Reported per variant: wall time, records/s, the
//! plugin's CPU seconds (per million records), flush latency p50/p99, the journal's size at
//! the end and the entries it took, lost and duplicated (by `seq` in the output folder).
//! Two record sizes: ~100 B (many records per call) and 1 KiB. The variants alternate,
//! three rounds, and each row is one round (this machine is noisy: compare within a round).
//!
//! `cargo bench -p firehose-fanout-cli --bench journal`

mod common;

use common::*;

fn main() -> anyhow::Result<()> {
    let machine_at_start = print_machine(
        "issue 12: the journal's cost (off / 1 s group commit / fdatasync per entry)",
    );
    let mut rows = Vec::new();
    let mut results = Vec::new();
    for (round, (records, size)) in [(1_000_000u64, 100u64), (300_000, 1024)]
        .into_iter()
        .flat_map(|w| (1..=3).map(move |r| (r, w)))
    {
        for (variant, sync) in [
            ("off", None),
            ("on, sync 1s", Some("1s")),
            ("on, sync 0", Some("0")),
        ] {
            let load_before = load_text();
            let out = scratch("journal-out");
            let jdir = scratch("journal-dir");
            let emu = Emu::start(args![
                "--streams",
                4,
                "--out",
                out.display(),
                "--keep-records",
                0,
            ])?;
            let mut a = args![
                "--generate",
                records,
                "--record-size",
                size,
                "--retry-limit",
                "no_limits",
                "-p",
                format!("endpoint={}", emu.endpoint),
                "-p",
                "region=us-east-1",
                "-p",
                format!("delivery_streams={}", emu.streams.join(",")),
                "-p",
                "stream_bytes_per_second=1000MiB",
            ];
            if let Some(s) = sync {
                a.extend(args![
                    "-p",
                    format!("journal_path={}", jdir.display()),
                    "-p",
                    format!("journal_sync_interval={s}"),
                ]);
            }
            let r = replay(&a, false)?;
            emu.flush()?;
            let mut seqs = SeqCount::new(records);
            scan_output(&out, |l| seqs.add(l.seq))?;
            emu.stop();
            let journal_bytes: u64 = std::fs::read_dir(&jdir)
                .map(|d| {
                    d.filter_map(|e| e.ok())
                        .filter(|e| e.file_name().to_string_lossy().ends_with(".journal"))
                        .filter_map(|e| e.metadata().ok())
                        .map(|m| m.len())
                        .sum()
                })
                .unwrap_or(0);
            let _ = std::fs::remove_dir_all(&out);
            let _ = std::fs::remove_dir_all(&jdir);
            let load_after = load_text();
            let secs = r.f("elapsed_seconds");
            let lat = &r.summary["flush_latency_ms"];
            rows.push(vec![
                format!("{size} B"),
                round.to_string(),
                variant.to_string(),
                int(records),
                format!("{secs:.2} s"),
                int((records as f64 / secs) as u64),
                format!("{:.2} s", r.f("cpu_seconds_plugin")),
                format!("{:.2} s", r.f("cpu_seconds_per_million_records")),
                format!(
                    "{:.1} / {:.1} ms",
                    lat["p50"].as_f64().unwrap_or(0.0),
                    lat["p99"].as_f64().unwrap_or(0.0)
                ),
                if sync.is_some() {
                    format!("{:.1} KiB", journal_bytes as f64 / 1024.0)
                } else {
                    "-".into()
                },
                int(seqs.lost()),
                int(seqs.duplicated()),
                format!("{load_before} → {load_after}"),
            ]);
            results.push(json!({
                "record_size": size, "records": records, "round": round, "variant": variant,
                "journal_bytes_at_end": journal_bytes, "lost": seqs.lost(),
                "duplicated": seqs.duplicated(), "replay": r.summary,
                "load_before": load_before, "load_after": load_after,
            }));
        }
    }
    emit_table(
        "journal",
        &[
            "records",
            "round",
            "journal",
            "count",
            "wall",
            "records/s",
            "plugin CPU",
            "CPU per M records",
            "flush latency p50 / p99",
            "journal at end",
            "lost",
            "duplicated",
            "load before → after",
        ],
        &rows,
    );
    let path = write_json(
        "journal.json",
        &json!({"machine": machine_at_start, "runs": results}),
    )?;
    println!("raw results: {}", path.display());
    Ok(())
}
