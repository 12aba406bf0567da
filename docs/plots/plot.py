#!/usr/bin/env python3
"""Draws the PNGs of docs/benchmarks.md from what the benches wrote to target/bench-results/.

    scripts/install-plot-tools.sh            # once: matplotlib in target/tools/plot-venv
    target/tools/plot-venv/bin/python docs/plots/plot.py [RESULTS_DIR] [OUT_DIR]

Each plot is drawn only when its inputs exist:
  throttling.png  <- throttling.json + throttling-*.csv   (cargo bench ... --bench throttling)
  streams.png     <- streams.json                          (--bench streams)
  nodes.png       <- nodes.json + nodes.csv                (--bench nodes)
  discovery.png   <- discovery.json + discovery.csv        (--bench discovery)
  memory.png      <- throughput-rss.csv                    (--bench throughput)
  engine.png      <- engine.json                           (--bench engine)
"""

import csv
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
RESULTS = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target", "bench-results")
OUT = sys.argv[2] if len(sys.argv) > 2 else HERE
MIB = 1024.0 * 1024.0

plt.rcParams.update(
    {
        "figure.dpi": 110,
        "font.size": 10,
        "axes.grid": True,
        "grid.alpha": 0.3,
        "axes.spines.top": False,
        "axes.spines.right": False,
    }
)


def path(name):
    return os.path.join(RESULTS, name)


def have(*names):
    missing = [n for n in names if not os.path.exists(path(n))]
    if missing:
        print(f"plot.py: skipped (missing {', '.join(missing)})")
    return not missing


def read_csv(name):
    with open(path(name), newline="") as f:
        rows = list(csv.DictReader(f))
    return rows


def machine_note(m):
    load = m.get("load_at_start", [0, 0, 0])
    return f"{m.get('cores', '?')} cores, load {load[0]:.2f} at start"


def save(fig, name):
    out = os.path.join(OUT, name)
    fig.savefig(out, bbox_inches="tight")
    plt.close(fig)
    print(f"plot.py: wrote {out}")


def moving_mean(xs, n=3):
    out = []
    for i in range(len(xs)):
        lo = max(0, i - n + 1)
        out.append(sum(xs[lo : i + 1]) / (i + 1 - lo))
    return out


def throttling():
    if not have("throttling.json"):
        return
    data = json.load(open(path("throttling.json")))
    runs = [r for r in data["runs"] if os.path.exists(path(r.get("timeline", "")))]
    if not runs:
        print("plot.py: skipped throttling.png (no timelines)")
        return
    fig, axes = plt.subplots(len(runs), 1, figsize=(9, 3.1 * len(runs)), sharex=True, squeeze=False)
    for ax, run in zip(axes[:, 0], runs):
        rows = read_csv(run["timeline"])
        t = [int(r["elapsed_s"]) for r in rows]
        streams = [k for k in rows[0].keys() if k.startswith("logs-")]
        quota = float(rows[0]["quota_per_stream"]) / MIB
        for s in streams:
            ax.plot(t, [int(r[s]) / MIB for r in rows], lw=1.0, alpha=0.55, label=s)
        per_stream_mean = [int(r["total"]) / MIB / len(streams) for r in rows]
        ax.plot(t, moving_mean(per_stream_mean), lw=2.4, color="black", label="mean per stream, 3 s average")
        ax.axhline(quota, color="tab:red", ls="--", lw=1.6, label=f"true quota {quota:g} MiB/s")
        ax.axhline(0.85 * quota, color="tab:red", ls=":", lw=1.2, label="85 % of quota")
        conv = run.get("converged_after_s_3s_mean")
        if conv is not None:
            ax.axvline(conv, color="tab:green", lw=1.2, label=f"converged at {conv} s")
        ax.set_ylabel("delivered MiB/s")
        ax.set_ylim(0, max(2.2 * quota, ax.get_ylim()[1]))
        ax.set_title(
            f"{run['label']}: plugin configured 5 MiB/s per stream; "
            f"delivered {100 * run['delivered_ratio_whole_run']:.0f} % of the true capacity, "
            f"{100 * run['throttled_share']:.0f} % of Firehose records throttled",
            fontsize=9.5,
        )
        ax.legend(fontsize=8, ncol=3, loc="upper right")
    axes[-1, 0].set_xlabel("seconds since replay started")
    fig.suptitle(
        "Learning a lower real quota (AIMD): bytes delivered per stream per second\n"
        f"({machine_note(data['machine'])}; cargo bench -p firehose-fanout-cli --bench throttling)",
        fontsize=11,
    )
    save(fig, "throttling.png")


def streams():
    if not have("streams.json"):
        return
    data = json.load(open(path("streams.json")))
    runs = data["runs"]
    n = [r["streams"] for r in runs]
    got = [r["sustained_bytes_per_second"] / MIB for r in runs]
    cap = [r["capacity_bytes_per_second"] / MIB for r in runs]
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    ax.plot(n, cap, "-", color="tab:red", lw=7, alpha=0.25, label="capacity: streams × 5 MiB/s")
    ax.plot(n, got, "o-", color="tab:blue", lw=2.2, ms=7, label="delivered (sustained, t ≥ 2 s)")
    for x, y, c, r in zip(n, got, cap, runs):
        ax.annotate(
            f"{100 * y / c:.0f} %\n{r['cores_busy']:.2f} cores",
            (x, y),
            textcoords="offset points",
            xytext=(8, -26),
            fontsize=8,
        )
    ax.set_xscale("log", base=2)
    ax.set_yscale("log", base=2)
    ax.set_xticks(n)
    ax.set_xticklabels([str(x) for x in n])
    ticks = [2**k for k in range(1, 9) if 2**k <= max(cap) * 1.5]
    ax.set_yticks(ticks)
    ax.set_yticklabels([str(t) for t in ticks])
    ax.set_xlabel("delivery streams (5 MiB/s quota each)")
    ax.set_ylabel("delivered MiB/s (log scale)")
    ax.set_title(
        "Throughput against the number of streams, 1 KiB records, saturating\n"
        f"({machine_note(data['machine'])}; labels: share of capacity, CPU of the replay process)",
        fontsize=10,
    )
    ax.legend(loc="upper left")
    save(fig, "streams.png")


def nodes():
    if not have("nodes.json", "nodes.csv"):
        return
    data = json.load(open(path("nodes.json")))
    rows = read_csv("nodes.csv")
    t = [int(r["elapsed_s"]) for r in rows]
    fig, ax = plt.subplots(figsize=(9, 4.2))
    for k in [k for k in rows[0] if k.startswith("node")]:
        ax.plot(t, moving_mean([int(r[k]) / MIB for r in rows]), lw=1.5, label=k + " (3 s average)")
    ax.plot(t, [int(r["total"]) / MIB for r in rows], color="black", lw=1.2, alpha=0.7, label="all nodes")
    cap = data["capacity_bytes_per_second"] / MIB
    ax.axhline(cap, color="tab:red", ls="--", label=f"capacity {cap:g} MiB/s")
    ax.axhline(cap / 4, color="tab:red", ls=":", label="fair share")
    win = data.get("window_elapsed_csv")
    if win:
        ax.axvspan(win[0], win[1], color="tab:gray", alpha=0.12, label="window: all 4 running")
    ax.set_ylim(0, 1.45 * cap)
    ax.set_xlabel("seconds since the first replay started")
    ax.set_ylabel("delivered MiB/s")
    ax.set_title(
        f"4 replay processes sharing 4 streams of 5 MiB/s: {100 * data['aggregate_ratio']:.0f} % of capacity, "
        f"Jain {data['jain_window']:.3f}\n({machine_note(data['machine'])})",
        fontsize=10,
    )
    ax.legend(fontsize=8, ncol=4, loc="upper center", bbox_to_anchor=(0.5, -0.15))
    save(fig, "nodes.png")


def discovery():
    if not have("discovery.json", "discovery.csv"):
        return
    data = json.load(open(path("discovery.json")))
    rows = read_csv("discovery.csv")
    t = [int(r["elapsed_s"]) for r in rows]
    fig, ax = plt.subplots(figsize=(9, 4.2))
    for k in [k for k in rows[0] if k.startswith("logs-")]:
        ax.plot(t, [int(r[k]) / MIB for r in rows], lw=1.4, label=k)
    ax.axvline(data["created_at_elapsed"], color="tab:green", ls="--", label="logs-4 created")
    ax.axvline(data["deleted_at_elapsed"], color="tab:red", ls="--", label="logs-1 deleted")
    ax.axhline(2.0, color="gray", ls=":", label="quota 2 MiB/s")
    ax.set_xlabel("seconds since replay started")
    ax.set_ylabel("delivered MiB/s")
    first = data.get("first_accept_after_s")
    ax.set_title(
        "Discovery by prefix (discovery_interval 5s): "
        + (f"logs-4 carried traffic {first:.1f} s after its creation" if first is not None else "logs-4 never used")
        + f", {data['lost']} lost, {data['duplicated']} duplicated\n({machine_note(data['machine'])})",
        fontsize=10,
    )
    ax.set_ylim(0, 3.2)
    ax.legend(fontsize=8, ncol=4, loc="lower center")
    save(fig, "discovery.png")


def memory():
    if not have("throughput-rss.csv"):
        return
    rows = read_csv("throughput-rss.csv")
    runs = {}
    for r in rows:
        runs.setdefault(r["run"], []).append((float(r["elapsed_s"]), int(r["rss_bytes"]) / 1e6))
    fig, ax = plt.subplots(figsize=(8, 4))
    for name, pts in runs.items():
        ax.plot([p[0] for p in pts], [p[1] for p in pts], lw=1.5, label=name)
    if os.path.exists(path("throughput.json")):
        mem = json.load(open(path("throughput.json"))).get("memory_runs", [])
        if mem:
            init = mem[0]["rss_after_init_bytes"] / 1e6
            ax.axhline(init, color="gray", ls=":", lw=1.2, label=f"RSS right after init ({init:.1f} MB)")
            ax.axhline(init + 20, color="tab:red", ls="--", lw=1.2, label="init + 20 MB (target for growth)")
    ax.set_xlabel("seconds since replay started")
    ax.set_ylabel("RSS of the replay process, MB")
    ax.set_ylim(0, None)
    ax.set_title("Memory at 250,000 records/s of ~100 bytes (4 streams, aggregation on)", fontsize=10)
    ax.legend(fontsize=8)
    save(fig, "memory.png")


def engine():
    if not have("engine.json"):
        return
    data = json.load(open(path("engine.json")))
    workloads = []
    for r in data["results"]:
        if r["workload"] not in workloads:
            workloads.append(r["workload"])
    fig, axes = plt.subplots(2, len(workloads), figsize=(5.5 * len(workloads), 7), squeeze=False)
    for col, w in enumerate(workloads):
        rows = [r for r in data["results"] if r["workload"] == w]
        null = [run["cpu"] for r in rows if r["variant"] == "null" for run in r["runs"]]
        names, marg_lo, marg_hi, rss_lo, rss_hi = [], [], [], [], []
        for r in rows:
            cpus = [run["cpu"] - n for run, n in zip(r["runs"], null)]
            rss = [run["max_rss"] / 1e6 for run in r["runs"]]
            v = r["variant"]
            label = "core plugin\n1 stream" if v.startswith("kinesis") else v
            label = "fanout\nsync" if v.startswith("firehose_fanout (") else label
            names.append(label.replace("firehose_fanout ", "fanout\n"))
            marg_lo.append(min(cpus))
            marg_hi.append(max(cpus))
            rss_lo.append(min(rss))
            rss_hi.append(max(rss))
        x = range(len(names))
        colors = ["gray", "tab:red"] + ["tab:blue"] * (len(names) - 2)
        ax = axes[0][col]
        ax.bar(x, marg_hi, color=colors, alpha=0.35)
        ax.bar(x, marg_lo, color=colors)
        core = [lo for n, lo in zip(names, marg_lo) if n.startswith("core")]
        if core:
            ax.axhline(core[0] * 0.25, color="tab:green", ls="--", lw=1.2, label="goal: 0.25 x core plugin")
            ax.legend(fontsize=8)
        ax.set_xticks(list(x), names, fontsize=8)
        ax.set_ylabel("CPU-s above the null output")
        ax.set_title(f"{w} ({rows[0]['line_bytes']:.0f} B): marginal CPU (low, high)", fontsize=9)
        ax = axes[1][col]
        ax.bar(x, rss_hi, color=colors, alpha=0.35)
        ax.bar(x, rss_lo, color=colors)
        nulls = [lo for n, lo in zip(names, rss_lo) if n == "null"]
        if nulls:
            ax.axhline(nulls[0] + 20, color="tab:green", ls="--", lw=1.2, label="goal: null + 20 MB")
            ax.legend(fontsize=8)
        ax.set_xticks(list(x), names, fontsize=8)
        ax.set_ylabel("peak RSS of Fluent Bit, MB")
    fig.suptitle(f"The real Fluent Bit, side by side ({machine_note(data['machine'])}, {data['rounds']} rounds)", fontsize=10)
    save(fig, "engine.png")


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    throttling()
    streams()
    nodes()
    discovery()
    memory()
    engine()
