#!/usr/bin/env bash
# Stops what tests/peers/kerberos/start.sh started in $PEER_DIR (by its recorded PIDs only);
# --purge also deletes $PEER_DIR.
set -uo pipefail
: "${PEER_DIR:?set PEER_DIR to the directory given to start.sh}"
stop() {
  local pidfile="$PEER_DIR/run/$1.pid" pid
  [[ -f "$pidfile" ]] || return 0
  pid="$(cat "$pidfile")"
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"   # Apache's parent stops its own children on TERM
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
  fi
  rm -f "$pidfile"
}
stop httpd
stop kdc
[[ "${1:-}" == --purge ]] && rm -rf "$PEER_DIR"
exit 0
