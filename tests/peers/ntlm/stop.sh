#!/usr/bin/env bash
# Stops the NTLM test site started by tests/peers/ntlm/start.sh in $PEER_DIR (its recorded PID only);
# --purge also deletes $PEER_DIR.
set -uo pipefail
: "${PEER_DIR:?set PEER_DIR to the directory given to start.sh}"
pidfile="$PEER_DIR/server.pid"
if [[ -f "$pidfile" ]]; then
  pid="$(cat "$pidfile")"
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
  fi
  rm -f "$pidfile"
fi
[[ "${1:-}" == --purge ]] && rm -rf "$PEER_DIR"
exit 0
