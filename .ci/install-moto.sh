#!/usr/bin/env bash
# Installs moto (a third-party AWS emulator) into target/tools/moto-venv for the tests that
# run the plugin against it (tests/aws_moto.rs). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/tools/moto-venv
if [ -x "$venv/bin/moto_server" ]; then
  echo "moto: already installed in $venv"
  exit 0
fi
mkdir -p target/tools
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check 'moto[server]>=5,<6'
"$venv/bin/moto_server" --help >/dev/null
echo "moto: installed $("$venv/bin/pip" show moto | sed -n 's/^Version: //p') in $venv"
