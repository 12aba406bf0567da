#!/usr/bin/env bash
# Short, bounded fuzz run of every cargo-fuzz target (fuzz/), for CI. Exits non-zero when a
# target crashes (a panic, a failed check, a sanitizer report, a timeout or an OOM); the
# input is left in fuzz/artifacts/<target>/ and printed.
#
#   .ci/fuzz-smoke.sh                 # 30 s per target
#   FUZZ_SECONDS=300 .ci/fuzz-smoke.sh
#   FUZZ_STRICT=1 .ci/fuzz-smoke.sh   # also check the known open bugs (docs/reliability.md)
#
# Works on a stable toolchain: cargo-fuzz needs nightly-only rustc flags (-Zsanitizer,
# sanitizer coverage), which RUSTC_BOOTSTRAP=1 unlocks on stable. Installs cargo-fuzz from
# crates.io when it is missing. If the AddressSanitizer build is not possible it fuzzes
# without a sanitizer; if cargo-fuzz cannot be built or run at all it runs the property
# tests (tests/properties.rs) with more cases instead, and says so.
#
# A cold build compiles the plugin and the AWS SDK with coverage instrumentation: about
# 15 minutes on 2 cores; later runs reuse fuzz/target.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"

SECS="${FUZZ_SECONDS:-30}"
TARGETS=(decode_encode config)
export RUSTC_BOOTSTRAP=1
export CARGO_TERM_COLOR=never

fallback() {
  echo "fuzz-smoke: $1; running the property tests instead (PROPTEST_CASES=2000)" >&2
  cd "$ROOT"
  unset RUSTC_BOOTSTRAP
  PROPTEST_CASES=2000 cargo test --test properties
  exit $?
}

if ! command -v cargo-fuzz >/dev/null 2>&1; then
  echo "fuzz-smoke: installing cargo-fuzz"
  cargo install cargo-fuzz --locked || fallback "cargo-fuzz could not be installed"
fi

cd fuzz
SAN=()
if ! cargo fuzz build -O; then
  echo "fuzz-smoke: the AddressSanitizer build failed; trying without a sanitizer" >&2
  SAN=(--sanitizer none)
  cargo fuzz build -O "${SAN[@]}" || fallback "cargo fuzz cannot build the targets here"
fi

max_len() { case "$1" in decode_encode) echo 8192 ;; *) echo 4096 ;; esac; }

status=0
for t in "${TARGETS[@]}"; do
  mkdir -p "corpus/$t"
  echo "== fuzz $t for ${SECS}s"
  if ! cargo fuzz run -O "${SAN[@]}" "$t" "corpus/$t" "seeds/$t" -- \
      -max_total_time="$SECS" -dict="dicts/$t.dict" -max_len="$(max_len "$t")" \
      -timeout=10 -rss_limit_mb=2048 -print_final_stats=1; then
    echo "fuzz-smoke: $t FAILED; reproduce with:" >&2
    for a in artifacts/"$t"/*; do
      [ -e "$a" ] && echo "  (cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run -O $t $a)" >&2
    done
    status=1
  fi
done
exit "$status"
