#!/usr/bin/env bash
# Installs what the tests against the real OpenID Connect server need: Node.js and oidc-provider
# (into tests/peers/oidc/node_modules). Idempotent; no lock file is written.
set -euo pipefail
cd "$(dirname "$0")/.."
source setup/lib.sh
command -v node >/dev/null && command -v npm >/dev/null || apt_install nodejs npm
# The tests' scripted browser (AGE_OAUTH_BROWSER) is a curl command line.
command -v curl >/dev/null || apt_install curl
[ -d peers/oidc/node_modules/oidc-provider ] && exit 0
cd peers/oidc
npm install --no-package-lock --no-audit --no-fund --loglevel=error
