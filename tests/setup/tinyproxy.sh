#!/usr/bin/env bash
# The real HTTP proxy the proxy tests go through: Debian's tinyproxy. The tests start their own
# instance on 127.0.0.1 with a config in a temp dir (tests/corporate.rs); the packaged service
# is stopped so it does not hold port 8888 or run as a daemon we did not ask for.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
if ! command -v tinyproxy >/dev/null && [ ! -x /usr/bin/tinyproxy ]; then
  apt_install tinyproxy
  # Debian starts the packaged service on install; the tests never use it.
  (service tinyproxy stop || systemctl stop tinyproxy) >/dev/null 2>&1 || true
fi
