#!/usr/bin/env bash
# Installs what tests/peers/ntlm needs: a Python venv with the pyspnego NTLM acceptor.
# Idempotent: an existing venv that already imports spnego is kept.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
VENV="$(cd "$(dirname "$0")/.." && pwd)/peers/ntlm/.venv"
PYSPNEGO_VERSION=0.12.4
if "$VENV/bin/python" -c 'import spnego' 2>/dev/null; then
  exit 0
fi
if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
  apt_install python3-venv
fi
python3 -m venv "$VENV"
"$VENV/bin/pip" install -q --disable-pip-version-check "pyspnego==$PYSPNEGO_VERSION"
"$VENV/bin/python" -c 'import spnego'
