"""Reads `perf script -F pid,tid,comm,time,ip,sym,dso` of one engine-bench round (stdin) and
prints, per workload, where each Fluent Bit process's CPU went (see engine-compare.sh).

A Fluent Bit process is told apart by its threads: `flb-out-kinesis*` is the core output,
`firehose-fanout*` this plugin, neither the null output. Processes run one after the other,
three per workload (null, core, firehose_fanout), in the bench's order."""

import re
import sys
from collections import defaultdict

freq = float(sys.argv[1])
line_re = re.compile(r"^\s*(.+?)\s+(\d+)/(\d+)\s+([\d.]+):\s+[0-9a-f]+\s+(.*?)\s+\((.*)\)\s*$")

procs = {}  # pid -> {"first": t, "comms": set, "samples": defaultdict(int)}


def category(comm, sym, dso):
    if comm.startswith("flb-pipeline"):
        return "pipeline"
    if not (comm.startswith("flb-out-kinesis") or comm.startswith("firehose-fanout")):
        return "other threads"
    if "kernel" in dso:
        return "kernel"
    if "libcrypto" in dso or "libssl" in dso:
        return "crypto"
    if "sha2::" in sym or "aws_lc" in sym or "gcm" in sym:
        return "crypto"
    if "jent_" in sym or sym in ("rol64", "xoshiro128starstar"):
        return "TLS library start-up (entropy)"
    if "libc.so" in dso:
        return "libc (memcpy, malloc)"
    if "libfirehose_fanout" in dso:
        if re.search(r"::codec::|::prepare::|records::Records|itoa|ryu", sym):
            return "code: msgpack to JSON records"
        if "base64" in sym:
            return "code: base64"
        if re.search(r"aws_smithy|aws_sdk|aws_runtime|aws_sigv4|hyper|http|tokio|rustls|mio", sym):
            return "code: SDK, HTTP, TLS framing, runtime"
        return "code: other"
    if "fluent-bit" in dso:
        return "code: the output (in fluent-bit)"
    return "code: other"


for raw in sys.stdin:
    m = line_re.match(raw)
    if not m:
        continue
    comm, pid, _tid, t, sym, dso = m.groups()
    pid = int(pid)
    p = procs.setdefault(pid, {"first": float(t), "comms": set(), "samples": defaultdict(int)})
    p["comms"].add(comm)
    p["samples"][category(comm.strip(), sym, dso)] += 1


def kind(p):
    if any(c.startswith("flb-out-kinesis") for c in p["comms"]):
        return "kinesis_firehose"
    if any(c.startswith("firehose-fanout") for c in p["comms"]):
        return "firehose_fanout"
    if any(c.startswith("flb-pipeline") for c in p["comms"]):
        return "null"
    return None


runs = sorted((p for p in procs.values() if kind(p)), key=lambda p: p["first"])
workloads = ["small lines", "Kubernetes lines"]
for w, start in zip(workloads, range(0, len(runs), 3)):
    trio = {kind(p): p for p in runs[start:start + 3]}
    if set(trio) != {"null", "kinesis_firehose", "firehose_fanout"}:
        print(f"{w}: expected null, kinesis_firehose and firehose_fanout runs, got {sorted(trio)}")
        continue
    s = lambda p, c: p["samples"].get(c, 0) / freq  # noqa: E731
    null_pipe = s(trio["null"], "pipeline") + s(trio["null"], "other threads")
    print(f"\n== {w}: CPU-s by category (perf -a, {freq:.0f} Hz)")
    cats = sorted({c for p in trio.values() for c in p["samples"]} - {"pipeline", "other threads"})
    print(f"{'':44}{'kinesis_firehose':>18}{'firehose_fanout':>18}")
    marg = {}
    for o in ("kinesis_firehose", "firehose_fanout"):
        p = trio[o]
        own = sum(s(p, c) for c in cats)
        pipe = s(p, "pipeline") + s(p, "other threads")
        marg[o] = own + pipe - null_pipe
    for c in cats:
        print(f"  {c:42}{s(trio['kinesis_firehose'], c):>18.3f}{s(trio['firehose_fanout'], c):>18.3f}")
    fb = {o: s(trio[o], "pipeline") + s(trio[o], "other threads") - null_pipe for o in marg}
    print(f"  {'Fluent Bit threads minus null run':42}{fb['kinesis_firehose']:>18.3f}{fb['firehose_fanout']:>18.3f}")
    print(f"  {'marginal (all of the above)':42}{marg['kinesis_firehose']:>18.3f}{marg['firehose_fanout']:>18.3f}")
    floor = s(trio["firehose_fanout"], "crypto") + s(trio["firehose_fanout"], "kernel")
    budget = 0.25 * marg["kinesis_firehose"]
    print(
        f"  ratio {marg['firehose_fanout'] / max(marg['kinesis_firehose'], 1e-9):.2f}; "
        f"0.25x budget {budget:.3f} CPU-s, of which crypto + kernel take {floor:.3f} "
        f"({floor / max(budget, 1e-9):.0%}), leaving {budget - floor:.3f} for everything else "
        f"(now {marg['firehose_fanout'] - floor:.3f})"
    )
