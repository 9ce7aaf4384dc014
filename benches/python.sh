#!/usr/bin/env bash
# Benchmark (not a test) of the Python package: token() warm/cold, 1,000 loopback requests with
# requests_auth() versus a fixed header, and get_gis() versus the old Python age-oauth 0.2.1 — all
# against the HTTPS sandbox (throw-away CA), with the same esri-app application for both packages.
# Usage: bash benches/python.sh   (needs `bash tests/setup/python.sh` first: the venv and the old package)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
py=$root/tests/python/.venv/bin/python
[ -x "$py" ] && [ -d tests/python/.legacy/age_oauth ] || { echo "run: bash tests/setup/python.sh" >&2; exit 2; }
cargo build --release --locked --quiet
work=$(mktemp -d)
trap 'kill $sandbox_pid 2>/dev/null || true; rm -rf "$work"' EXIT
for name in $(env | sed -n 's/^\(AGE_OAUTH_[A-Z_]*\)=.*/\1/p'); do unset "$name"; done
unset REQUESTS_CA_BUNDLE CURL_CA_BUNDLE ESRI_API_KEY
export AGE_OAUTH_HOME=$work/home AGE_OAUTH_BROWSER=none AGE_OAUTH_BIN=$root/target/release/age-oauth
export HOME=$work XDG_CONFIG_HOME=$work/config
cd "$work"

ec=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)
openssl req -x509 "${ec[@]}" -keyout ca.key -out ca.pem -days 2 -subj "/CN=age-oauth bench CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
openssl req "${ec[@]}" -keyout key.pem -out srv.csr -subj "/CN=127.0.0.1" 2>/dev/null
printf "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n" >ext.cnf
openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out cert.pem -days 2 -extfile ext.cnf 2>/dev/null

"$AGE_OAUTH_BIN" sandbox --port 0 --tls-cert cert.pem --tls-key key.pem >sandbox.log &
sandbox_pid=$!
for _ in $(seq 50); do grep -q "sandbox at" sandbox.log 2>/dev/null && break; sleep 0.1; done
portal=$(sed -n 's/^ArcGIS Portal sandbox at \(https[^ ]*\).*/\1/p' sandbox.log)
"$AGE_OAUTH_BIN" profile add bench --provider esri-app --portal "$portal" --client-id age-oauth-sandbox-app \
  --client-secret sandbox-app-secret --verify-ssl "$work/ca.pem" 2>/dev/null
"$AGE_OAUTH_BIN" login --profile bench 2>/dev/null
# The same application as a connection of the old package (its own store under XDG_CONFIG_HOME).
PYTHONPATH=$root/tests/python/.legacy "$py" - "$portal" "$work/ca.pem" <<'PY'
import sys
from age_oauth.connections import ConnectionStore
ConnectionStore().create(label="bench", portal_url=sys.argv[1], client_id="age-oauth-sandbox-app",
                         client_secret="sandbox-app-secret", verify_ssl=sys.argv[2], auth_type="app")
PY
BENCH_PORTAL=$portal BENCH_CA=$work/ca.pem "$py" "$root/benches/python_bench.py"
