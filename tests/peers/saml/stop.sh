#!/usr/bin/env bash
# Stops the SimpleSAMLphp IdP that tests/peers/saml/start.sh started in DIR: PHP's built-in server and
# its workers, by the recorded PID's own process group (start.sh runs it under setsid) only.
# The config and signing key stay, so start.sh --dir DIR brings the same IdP back;
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
  # Only when the PID still leads its own group (it is ours, not a recycled PID).
  if kill -0 "$pid" 2>/dev/null && [[ "$(ps -o pgid= -p "$pid" | tr -d ' ')" == "$pid" ]]; then
    kill -- "-$pid"
    for _ in $(seq 50); do kill -0 -- "-$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 -- "-$pid" 2>/dev/null && kill -9 -- "-$pid"
  fi
  rm -f "$pidfile"
fi
[[ -n "$PURGE" ]] && rm -rf "$DIR"
exit 0
