#!/usr/bin/env bash
# Starts tests/peers/oidc/server.mjs on a free 127.0.0.1 port; prints the issuer URL.
# Usage: start.sh WORKDIR   (pid in WORKDIR/server.pid, log in WORKDIR/server.log; stop.sh WORKDIR stops it)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
work="${1:?usage: start.sh WORKDIR}"
mkdir -p "$work"
command -v node >/dev/null || { echo "node is not installed: run bash tests/setup/oidc.sh" >&2; exit 3; }
[ -d "$here/node_modules/oidc-provider" ] || { echo "oidc-provider is not installed: run bash tests/setup/oidc.sh" >&2; exit 3; }
rm -f "$work/issuer"
OIDC_STATE_DIR="$work" nohup node "$here/server.mjs" >"$work/server.log" 2>&1 </dev/null &
echo $! >"$work/server.pid"
for _ in $(seq 1 150); do [ -s "$work/issuer" ] && break; sleep 0.1; done
[ -s "$work/issuer" ] || { echo "oidc-provider did not start:" >&2; cat "$work/server.log" >&2; exit 1; }
cat "$work/issuer"
