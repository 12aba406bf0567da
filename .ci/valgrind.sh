#!/usr/bin/env bash
# The C-boundary tests under valgrind memcheck: the plugin loaded by the test host (dlopen,
# register, init, flushes on 64 KiB stacks, exit, unload, reload), with zero errors allowed.
# Installs valgrind if missing. Runs after `cargo test` has built the test binaries.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v valgrind >/dev/null 2>&1; then
  apt-get update -qq && apt-get install -y -qq valgrind
fi
export AWS_EC2_METADATA_DISABLED=true
cargo test --locked --test plugin_e2e --test lifecycle --test c_abi --no-run 2>/dev/null
status=0
for t in plugin_e2e lifecycle; do
  bin=$(ls -t target/debug/deps/$t-* | grep -v '\.d$' | head -1)
  echo "== valgrind memcheck: $t"
  # --test-threads=1: one test at a time keeps valgrind's serialised threads fast enough.
  if ! valgrind --error-exitcode=9 --errors-for-leak-kinds=definite --leak-check=full \
      --show-leak-kinds=definite --suppressions=.ci/valgrind.supp \
      -q "$bin" --test-threads=1 > "target/valgrind-$t.log" 2>&1; then
    grep -E '^==[0-9]+== ' "target/valgrind-$t.log" | head -n 60
    status=1
  fi
  grep -E '^test result' "target/valgrind-$t.log" || true
done
exit $status
