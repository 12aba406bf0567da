#!/usr/bin/env bash
# One delivery stream with a given real quota, the plugin inside the real Fluent Bit at its
# default quota settings: how much of the stream it uses, and whether every record arrived
# exactly once. Everything runs on 127.0.0.1 (the emulator) with test credentials.
#
#   scripts/real-engine-quota.sh QUOTA RECORDS [k8s|1k]
#     QUOTA    the stream's real quota in bytes/s (emulator --quota-bytes), e.g. 20MiB or 1MiB
#     RECORDS  how many records
#     k8s      the bundled Kubernetes records (~925 bytes each as delivered; default)
#     1k       generated 1 KiB lines {"seq":N,"log":"..."}
#
# Needs `cargo build --release -p firehose-fanout -p firehose-fanout-cli` and a Fluent Bit
# ($FLUENT_BIT, default /work/shared/fluent-bit/bin/fluent-bit). Extra output properties:
# PLUGIN_PROPS="    stream_bytes_per_second 5MiB" (lines of the [OUTPUT] section).
# Prints delivered MiB/s per second, the mean after the first 10 s, lost and duplicated.
set -euo pipefail
quota=${1:?the real quota, e.g. 20MiB}
records=${2:?how many records}
kind=${3:-k8s}
. "$(dirname "$0")/lib/stand-in.sh"

# The input: JSON lines, each with a distinct id (demo_id or seq).
if [ "$kind" = k8s ]; then
    # The demo sends the bundled records, each with a distinct demo_id, to an unlimited
    # in-process emulator; its output objects are those records as JSON lines.
    "$cli" demo --records "$records" --streams 1 --out "$dir/demo" --no-progress >/dev/null
    find "$dir/demo" -type f ! -name '.*' -exec cat {} + >"$dir/input.jsonl"
    id_key=demo_id
else
    awk -v n="$records" 'BEGIN { pad = sprintf("%*s", 990, ""); gsub(/ /, "x", pad);
        for (i = 0; i < n; i++) printf "{\"seq\":%d,\"log\":\"%s\"}\n", i, pad }' >"$dir/input.jsonl"
    id_key=seq
fi
lines=$(wc -l <"$dir/input.jsonl")
[ "$lines" -eq "$records" ] || { echo "input has $lines lines, not $records" >&2; exit 1; }

start_emulator --stream s0 --quota-bytes "$quota" --out "$dir/out" --keep-records 0 --buffer-size 8

write_parsers
cat >"$dir/fluent-bit.conf" <<CONF
[SERVICE]
    Flush        1
    Grace        5
    Log_Level    info
    Parsers_File $dir/parsers.conf
[INPUT]
    Name             tail
    Tag              app.log
    Path             $dir/input.jsonl
    Parser           json
    Read_from_Head   On
    Buffer_Chunk_Size 256k
    Buffer_Max_Size  256k
    Mem_Buf_Limit    32MB
[OUTPUT]
    Name             firehose_fanout
    Match            app.*
    region           us-east-1
    endpoint         $endpoint
    delivery_streams s0
    workers          2
    Retry_Limit      False
${PLUGIN_PROPS:-}
CONF
start=$(date +%s.%N)
"$fb" -e "$plugin" -c "$dir/fluent-bit.conf" >"$dir/fb.log" 2>&1 &
fb_pid=$!

# Wait until the stream took as many bytes as the input has (the records come out as the
# same JSON lines), or nothing more arrived for 15 s.
size=$(wc -c <"$dir/input.jsonl")
last=-1
still=0
for _ in $(seq 1200); do
    kill -0 "$fb_pid" 2>/dev/null || { echo "fluent-bit exited" >&2; tail -20 "$dir/fb.log" >&2; exit 1; }
    got=$(curl -s "$endpoint/stats" | jq '[.streams[].accepted_bytes] | add')
    [ "$got" -ge "$size" ] && break
    if [ "$got" -eq "$last" ]; then still=$((still + 1)); else still=0; fi
    [ "$still" -ge 30 ] && [ "$got" -gt 0 ] && break
    last=$got
    sleep 0.5
done
sleep 2
curl -s -X POST "$endpoint/admin/flush" >/dev/null
curl -s "$endpoint/stats" >"$dir/stats.json"
kill "$fb_pid"; wait "$fb_pid" 2>/dev/null || true; fb_pid=""

t0=${start%.*}
jq -r --argjson t0 "$t0" '.streams.s0.series[] | select(.t >= $t0) | "\(.t - $t0) \(.bytes)"' \
    "$dir/stats.json" >"$dir/series.txt"
echo "real quota $quota, $records $kind records, plugin: default quota settings ${PLUGIN_PROPS:+(+ $PLUGIN_PROPS)}"
awk '{ printf "%s:%.2f ", $1, $2 / 1048576 } END { print "" }' "$dir/series.txt"
# Whole seconds only: the first (start-up) and the last (partial) left out; a second with
# nothing accepted has no point in the series and counts as 0.
awk 'NR == 1 { first = $1 } { b[$1] = $2; last = $1 } END {
    for (t = first + 1; t < last; t++) { all += b[t]; k++; if (t >= 10) { late += b[t]; m++ } }
    printf "seconds %d, mean %.2f MiB/s, after 10 s %.2f MiB/s (%d s)\n", k, all / k / 1048576, (m ? late / m : 0) / 1048576, m }' \
    "$dir/series.txt"
jq -r '.streams.s0 | "throttled records \(.throttled_records), accepted records \(.accepted_records)"' "$dir/stats.json"
find "$dir/out" -type f ! -name '.*' -exec cat {} + | grep -o "\"$id_key\":[0-9]*" | sort | uniq -c |
    awk -v n="$records" '{ seen++; if ($1 > 1) dup += $1 - 1 } END { printf "lost %d, duplicated %d\n", n - seen, dup }'
