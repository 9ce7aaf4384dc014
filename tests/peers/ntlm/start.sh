#!/usr/bin/env bash
# Starts the NTLM-protected test site (server.py, pyspnego acceptor) on 127.0.0.1, state under $PEER_DIR.
#   PEER_DIR   work dir (required; created)      NTLM_PORT  default: a free port
#   WATCH_PID  optional: when this process ends (the test binary), stop the site and delete $PEER_DIR
# Writes $PEER_DIR/env (sourceable): NTLM_URL, NTLM_BASE_URL. Users alice/alice-password and
# bob/bob-password, with the domain EXAMPLE or none. The venv comes from tests/setup/ntlm.sh.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
: "${PEER_DIR:?set PEER_DIR to a work directory}"
mkdir -p "$PEER_DIR"
DIR="$(cd "$PEER_DIR" && pwd)"
# Armed first, so even a failed start is cleaned up when the test process ends, however it ends.
if [[ -n "${WATCH_PID:-}" ]]; then
  nohup bash -c "while kill -0 $WATCH_PID 2>/dev/null; do sleep 1; done; PEER_DIR='$DIR' '$HERE/stop.sh' --purge" \
    >/dev/null 2>&1 </dev/null &
fi
PYTHON="$HERE/.venv/bin/python"
"$PYTHON" -c 'import spnego' 2>/dev/null || { echo "no pyspnego venv in $HERE/.venv: run tests/setup/ntlm.sh first" >&2; exit 3; }
printf '%s\n' ':alice:alice-password' 'EXAMPLE:alice:alice-password' ':bob:bob-password' 'EXAMPLE:bob:bob-password' >"$DIR/users"
if ! { [[ -f "$DIR/server.pid" ]] && kill -0 "$(cat "$DIR/server.pid")" 2>/dev/null; }; then
  rm -f "$DIR/port"
  NTLM_USERS="$DIR/users" PEER_DIR="$DIR" nohup "$PYTHON" -u "$HERE/server.py" >"$DIR/server.log" 2>&1 </dev/null &
  echo $! >"$DIR/server.pid"
  for _ in $(seq 100); do [[ -s "$DIR/port" ]] && break; sleep 0.1; done
  [[ -s "$DIR/port" ]] || { echo "the NTLM site did not start:" >&2; cat "$DIR/server.log" >&2; exit 1; }
fi
BASE="http://127.0.0.1:$(cat "$DIR/port")"
cat >"$DIR/env" <<ENV
export NTLM_BASE_URL='$BASE'
export NTLM_URL='$BASE/protected'
ENV
echo "NTLM site: $BASE/protected (env: $DIR/env)"
