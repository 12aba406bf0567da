#!/usr/bin/env bash
# Where the plugin's CPU goes inside the real Fluent Bit: perf over one run of the engine
# bench's default configuration (tail of a JSON-lines file, 4 streams, sync, aggregation
# auto, workers 2) against `firehose-fanout emulate` (no quotas) on 127.0.0.1 over plain
# http. Prints CPU by thread group (Fluent Bit's own threads vs the plugin's), by library,
# and the plugin's top symbols grouped into the stages of the data path.
#
#   scripts/engine-profile.sh [small|k8s] [RECORDS]
#   KEEP_PERF_DATA=/tmp/perf.data scripts/engine-profile.sh ...   (keeps the profile)
#   PERF_CALLGRAPH="--call-graph dwarf,16384" ...                 (callers of libc's memmove)
#
# Needs perf, `cargo build --release -p firehose-fanout -p firehose-fanout-cli` and a
# Fluent Bit ($FLUENT_BIT, default /work/shared/fluent-bit/bin/fluent-bit).
set -euo pipefail
kind=${1:-small}
records=${2:-1000000}
. "$(dirname "$0")/lib/stand-in.sh"

# The engine bench's two line shapes (crates/cli/benches/engine.rs).
if [ "$kind" = k8s ]; then
    awk -v n="$records" 'BEGIN { for (i = 0; i < n; i++) printf "{\"seq\":%d,\"log\":\"2026-12-01T10:00:00.123Z INFO  [http-nio-8080-exec-7] c.e.checkout.OrderController : order %010d accepted for customer 7731, 3 items, total 129.90 EUR, payment authorised by provider psp-2, shipping standard, warehouse eu-central-1b\",\"stream\":\"stdout\",\"time\":\"2026-12-01T10:00:00.123456789Z\",\"kubernetes\":{\"pod_name\":\"checkout-7d9f8c6b5-x2k4p\",\"namespace_name\":\"shop\",\"pod_id\":\"6f1c2a3e-5b7d-4e8f-9a0b-1c2d3e4f5a6b\",\"labels\":{\"app\":\"checkout\",\"pod-template-hash\":\"7d9f8c6b5\",\"version\":\"v2.14.1\",\"team\":\"payments\"},\"annotations\":{\"prometheus.io/scrape\":\"true\",\"prometheus.io/port\":\"9102\"},\"host\":\"ip-10-0-12-34.eu-central-1.compute.internal\",\"container_name\":\"web\",\"docker_id\":\"4b8e2f1a9c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f\",\"container_hash\":\"registry.example.com/shop/checkout@sha256:0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0\",\"container_image\":\"registry.example.com/shop/checkout:v2.14.1\"}}\n", i, i }' >"$dir/input.jsonl"
else
    awk -v n="$records" 'BEGIN { for (i = 0; i < n; i++) printf "{\"seq\":%d,\"level\":\"info\",\"log\":\"GET /api/v1/items 200 12ms user=42 req=%08x\"}\n", i, i }' >"$dir/input.jsonl"
fi

start_emulator --streams 4 --stream-prefix eng- --keep-records 0

write_parsers
cat >"$dir/fluent-bit.conf" <<CONF
[SERVICE]
    Flush        1
    Grace        5
    Log_Level    warn
    Parsers_File $dir/parsers.conf
[INPUT]
    Name             tail
    Tag              app.log
    Path             $dir/input.jsonl
    Parser           json
    Read_from_Head   On
    Exit_On_Eof      On
    Mem_Buf_Limit    64M
[OUTPUT]
    Name             firehose_fanout
    Match            app.*
    region           us-east-1
    endpoint         $endpoint
    delivery_streams eng-0,eng-1,eng-2,eng-3
    stream_bytes_per_second 1000MiB
    workers          2
CONF

perf record -q -F 999 ${PERF_CALLGRAPH:--g} -o "$dir/perf.data" -- "$fb" -e "$plugin" -c "$dir/fluent-bit.conf" >"$dir/fb.log" 2>&1 || true
[ -n "${KEEP_PERF_DATA:-}" ] && cp "$dir/perf.data" "$KEEP_PERF_DATA"
echo "== $records $kind lines ($(stat -c %s "$dir/input.jsonl") bytes), firehose_fanout default configuration"
echo "-- CPU by thread (comm)"
perf report -i "$dir/perf.data" --no-children --sort comm --stdio 2>/dev/null | grep -E '^ +[0-9]' | head -12
echo "-- CPU by library (dso)"
perf report -i "$dir/perf.data" --no-children --sort dso --stdio 2>/dev/null | grep -E '^ +[0-9]' | head -12
echo "-- the plugin's threads (firehose-fanout) by library"
perf report -i "$dir/perf.data" --no-children --comms firehose-fanout --sort dso --stdio 2>/dev/null | grep -E '^ +[0-9]' | head -8
echo "-- the plugin's threads: top symbols in every library"
perf report -i "$dir/perf.data" --no-children --comms firehose-fanout --sort dso,sym --stdio 2>/dev/null | grep -E '^ +[0-9]' | head -25
echo "-- samples"
perf report -i "$dir/perf.data" --stdio --header-only 2>/dev/null | grep -E 'sample|duration' | head -4
perf report -i "$dir/perf.data" --no-children --sort comm --stdio 2>/dev/null | grep -E '^# (Samples|Event count)' | head -2
echo "-- the plugin's library: top symbols"
perf report -i "$dir/perf.data" --no-children --dsos libfirehose_fanout.so --sort sym --stdio 2>/dev/null |
    grep -E '^ +[0-9]' | head -40
echo "-- Fluent Bit's threads, top symbols (all libraries)"
perf report -i "$dir/perf.data" --no-children --sort comm,dso,sym --stdio 2>/dev/null | grep -E '^ +[0-9]' | head -30
