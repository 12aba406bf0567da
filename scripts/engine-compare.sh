#!/usr/bin/env bash
# Where the CPU of the two Firehose outputs goes, side by side, in the engine bench's own
# runs (TLS to the stand-in, default configuration): `perf record -a` over one round of
# null / kinesis_firehose / firehose_fanout (sync), then every sample of each Fluent Bit
# process put in a category:
#   pipeline  Fluent Bit's engine thread (tail, parser, chunks): the same work for every output
#   output    the output's own threads (kinesis_firehose's flb-out-* workers; firehose_fanout's
#             runtime threads), split into crypto (SHA-256 of the SigV4 payload hash, TLS),
#             kernel (mostly TCP over loopback, which also runs the receiving side), libc,
#             and the output's code (for firehose_fanout: codec, base64, SDK/HTTP/TLS framing)
# and what 0.25x of the core output's marginal CPU leaves once crypto and kernel are paid.
#
#   scripts/engine-compare.sh            (one round, both workloads; needs perf and python3)
#
# Builds the engine bench; needs ../shared/fluent-bit/bin/fluent-bit or FLUENT_BIT_BIN.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
cargo bench -p firehose-fanout-cli --bench engine --no-run 2>/dev/null
bench=$(ls -t target/release/deps/engine-* | grep -v '\.d$' | head -1)
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
freq=1999
# The bench's results of a full run stay as they were (this round runs under perf).
results=target/bench-results/engine.json
[ -f "$results" ] && cp "$results" "$dir/engine.json"
ENGINE_ROUNDS=1 ENGINE_ONLY=sync perf record -q -a -F $freq -o "$dir/perf.data" -- "$bench" --bench |
    grep -E '/ round' || true
[ -f "$dir/engine.json" ] && cp "$dir/engine.json" "$results"
perf script -i "$dir/perf.data" -F pid,tid,comm,time,ip,sym,dso 2>/dev/null |
    python3 "$root/scripts/lib/engine_compare.py" $freq
