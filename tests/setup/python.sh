#!/usr/bin/env bash
# Installs what the Python tests need (tests/python/requirements.txt: pytest, maturin, requests, httpx,
# arcgis 2.4.x) into tests/python/.venv, and the old Python age-oauth 0.2.1 (no dependencies, into
# tests/python/.legacy) for the benchmark comparison. Idempotent: skipped when the requirements are unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."
source setup/lib.sh
command -v python3 >/dev/null || apt_install python3
python3 -c 'import venv, ensurepip' 2>/dev/null || apt_install python3-venv
command -v openssl >/dev/null || apt_install openssl   # the tests' throw-away CA
venv=python/.venv
stamp=$venv/.installed-requirements
[ -x $venv/bin/python ] || python3 -m venv $venv
if ! cmp -s python/requirements.txt "$stamp" 2>/dev/null; then
  start=$(date +%s)
  $venv/bin/python -m pip install -q --disable-pip-version-check -r python/requirements.txt
  echo "python set-up: requirements installed in $(( $(date +%s) - start )) s" >&2
  cp python/requirements.txt "$stamp"
fi
# The old pure-Python age-oauth (PyPI 0.2.1) owns a script of the same name: keep it out of the venv's
# bin/ (--target, no scripts on PATH); the benchmark puts its directory on sys.path.
if [ ! -d python/.legacy/age_oauth ]; then
  $venv/bin/python -m pip install -q --disable-pip-version-check --no-deps --target python/.legacy 'age-oauth==0.2.1'
fi
