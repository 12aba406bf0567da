# Shared by the scripts that run the real Fluent Bit against `firehose-fanout emulate` on
# 127.0.0.1 (source it): paths, test credentials that never reach AWS, a scratch folder
# and the clean-up of what was started.
#   start_emulator ARGS...   starts `firehose-fanout emulate --port 0 ARGS...`, sets $endpoint
#   write_parsers            writes $dir/parsers.conf (a `json` parser)
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cli=$root/target/release/firehose-fanout
plugin=$root/target/release/libfirehose_fanout.so
fb=${FLUENT_BIT:-/work/shared/fluent-bit/bin/fluent-bit}
dir=$(mktemp -d)
emu_pid=""
fb_pid=""
cleanup() {
    [ -n "$fb_pid" ] && kill "$fb_pid" 2>/dev/null || true
    [ -n "$emu_pid" ] && kill "$emu_pid" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$dir"
}
trap cleanup EXIT
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_EC2_METADATA_DISABLED=true
export AWS_CONFIG_FILE=/nonexistent AWS_SHARED_CREDENTIALS_FILE=/nonexistent

start_emulator() {
    "$cli" emulate --port 0 "$@" >"$dir/emu.out" 2>"$dir/emu.err" &
    emu_pid=$!
    for _ in $(seq 100); do grep -q 'http://' "$dir/emu.out" 2>/dev/null && break; sleep 0.1; done
    endpoint=$(grep -o 'http://127\.0\.0\.1:[0-9]*' "$dir/emu.out" | head -1)
    [ -n "$endpoint" ] || { echo "the emulator did not start" >&2; exit 1; }
}

write_parsers() {
    printf '[PARSER]\n    Name   json\n    Format json\n' >"$dir/parsers.conf"
}
