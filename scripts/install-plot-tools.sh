#!/usr/bin/env bash
# Installs matplotlib (from PyPI) into a Python virtual environment for docs/plots/plot.py,
# which draws the PNGs of docs/benchmarks.md from target/bench-results/.
#
#   scripts/install-plot-tools.sh
#   target/tools/plot-venv/bin/python docs/plots/plot.py
#
# Idempotent: a venv whose stamp matches the pinned versions and the Python in use is kept.
# PLOT_VENV puts the venv elsewhere, PYTHON picks another interpreter than python3.
set -euo pipefail
cd "$(dirname "$0")/.."

venv="${PLOT_VENV:-$PWD/target/tools/plot-venv}"
python="${PYTHON:-python3}"
# matplotlib and what it pulls in, pinned so the PNGs come out the same.
requirements=(
  "matplotlib==3.11.2"
  "numpy==2.4.6"
  "contourpy==1.3.3"
  "cycler==0.12.1"
  "fonttools==4.68.0"
  "kiwisolver==1.5.1"
  "packaging==26.4"
  "pillow==13.0.0"
  "pyparsing==3.3.3"
  "python-dateutil==4.0.0"
)

say() { echo "install-plot-tools: $*"; }

if ! command -v "$python" >/dev/null 2>&1; then
  say "$python not found; installing Debian's python3 and python3-venv"
  apt-get update -qq && apt-get install -y -qq python3 python3-venv >/dev/null
fi

py_version="$("$python" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')"
stamp="$(printf '%s\n' "${requirements[@]}" "python $py_version" | sha256sum | cut -d' ' -f1)"

if [ -f "$venv/.plot-tools-stamp" ] && [ "$(cat "$venv/.plot-tools-stamp")" = "$stamp" ] &&
  "$venv/bin/python" -c 'import matplotlib' 2>/dev/null; then
  say "up to date in $venv (Python $py_version); nothing to do"
  exit 0
fi

say "creating $venv (Python $py_version)"
rm -rf "$venv"
if ! "$python" -m venv "$venv" 2>/dev/null; then
  say "the venv module is missing; installing Debian's python3-venv"
  apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
  "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${requirements[@]}"
"$venv/bin/python" -c 'import matplotlib; print("install-plot-tools: matplotlib", matplotlib.__version__)'
echo "$stamp" >"$venv/.plot-tools-stamp"
say "done: $venv/bin/python docs/plots/plot.py"
