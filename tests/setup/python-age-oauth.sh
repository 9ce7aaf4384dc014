#!/usr/bin/env bash
# Installs the real Python age-oauth 0.2.1 (PyPI) into a venv, so that `migrate python-age-oauth`
# is tested against a store made by the program it migrates from.
# Idempotent: an existing venv that already runs it is kept.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
VENV="$(cd "$(dirname "$0")/.." && pwd)/peers/python-age-oauth/.venv"
AGE_OAUTH_PY_VERSION=0.2.1
if "$VENV/bin/python" -c 'import importlib.metadata as m; assert m.version("age-oauth") == "'"$AGE_OAUTH_PY_VERSION"'"' 2>/dev/null; then
  exit 0
fi
if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
  apt_install python3-venv
fi
python3 -m venv "$VENV"
"$VENV/bin/pip" install -q --disable-pip-version-check "age-oauth==$AGE_OAUTH_PY_VERSION"
"$VENV/bin/python" -c 'import importlib.metadata as m; print("age-oauth", m.version("age-oauth"))'
