#!/usr/bin/env bash
# Stops the server that start.sh WORKDIR started (only the recorded pid).
set -uo pipefail
pidfile="${1:?usage: stop.sh WORKDIR}/server.pid"
[ -f "$pidfile" ] || exit 0
pid="$(cat "$pidfile")"
kill "$pid" 2>/dev/null && for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
rm -f "$pidfile"
