#!/usr/bin/env bash
# Stops the OpenBao server that tests/peers/openbao/start.sh started in DIR (its recorded PID only).
# The storage, unseal key and tokens stay, so start.sh --dir DIR brings the same server back;
# --purge also deletes DIR.
# Usage: stop.sh --dir DIR [--purge]      (or PEER_DIR=DIR stop.sh [--purge])
set -uo pipefail
DIR="${PEER_DIR:-}" PURGE=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --dir) DIR="${2:?--dir needs a directory}"; shift 2 ;;
    --purge) PURGE=1; shift ;;
    *) echo "stop.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[[ -n "$DIR" ]] || { echo "usage: stop.sh --dir DIR [--purge]" >&2; exit 2; }
pidfile="$DIR/server.pid"
if [[ -f "$pidfile" ]]; then
  pid="$(cat "$pidfile")"
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
  fi
  rm -f "$pidfile"
fi
[[ -n "$PURGE" ]] && rm -rf "$DIR"
exit 0
