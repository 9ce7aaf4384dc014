#!/usr/bin/env bash
# Proves tests/peers/openbao/start.sh gives what the fleet-store tests (issue 13) rely on, with curl only:
# KV v2 check-and-set (cas=0 creates, cas=1 updates, a stale cas is refused with HTTP 400 and the
# "check-and-set" message), metadata (current_version), the policy (a wrong token, the read-only token
# writing, and the fleet token outside secret/data/age-oauth/* all get 403), and durability (a clean
# restart and a kill -9 restart against the same state dir: same address, data and tokens intact), and
# the --tls variant (HTTPS trusted through BAO_CACERT only, kept across a restart).
# Exit 0 only if every check holds. Needs tests/setup/openbao.sh. Prints one line per check and timings.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
DIR="$(mktemp -d /tmp/age-oauth-openbao-prove-XXXXXX)"
# The watcher purges DIR and stops the server however this script ends.
export WATCH_PID=$$
now() { date +%s.%N; }
secs() { python3 -c "print(f'{$2 - $1:.2f}')"; }
t0=$(now)
"$HERE/start.sh" --dir "$DIR" >"$DIR/start.out"
t1=$(now)
# shellcheck disable=SC1091
source "$DIR/env"
unset WATCH_PID   # restarts below must not arm a second watcher

failed=0
check() { # check NAME EXPECTED ACTUAL
  if [[ "$2" == "$3" ]]; then echo "ok   $1"; else echo "FAIL $1: expected $2, got $3"; failed=$((failed + 1)); fi
}
header() { printf 'X-Vault-Token: %s\n' "$(cat "$1")" >"$2"; chmod 600 "$2"; }
header "$BAO_TOKEN_FILE" "$DIR/fleet.header"
header "$BAO_READONLY_TOKEN_FILE" "$DIR/readonly.header"
printf 'X-Vault-Token: %s\n' "not-a-token-$RANDOM" >"$DIR/wrong.header"
# call HEADER METHOD PATH [JSON]: prints the HTTP status; the body is in $DIR/body.
call() {
  local args=(-sS -o "$DIR/body" -w '%{http_code}' -H "@$1" -X "$2" "$BAO_ADDR/v1/$3")
  [[ $# -ge 4 ]] && args+=(-H 'Content-Type: application/json' --data-binary "$4")
  curl "${args[@]}"
}
field() { python3 -c "import json,sys; d=json.load(open('$DIR/body')); print($1)" 2>/dev/null || echo "<no $1 in: $(head -c 200 "$DIR/body")>"; }

KEY="$BAO_KV_MOUNT/data/$BAO_KV_PREFIX/prove"
META="$BAO_KV_MOUNT/metadata/$BAO_KV_PREFIX/prove"
check "cas=0 creates (200)" 200 "$(call "$DIR/fleet.header" POST "$KEY" '{"options":{"cas":0},"data":{"gen":"1"}}')"
check "  -> version 1" 1 "$(field 'd["data"]["version"]')"
check "cas=0 again is refused (400)" 400 "$(call "$DIR/fleet.header" POST "$KEY" '{"options":{"cas":0},"data":{"gen":"x"}}')"
check "cas=1 updates (200)" 200 "$(call "$DIR/fleet.header" POST "$KEY" '{"options":{"cas":1},"data":{"gen":"2"}}')"
check "  -> version 2" 2 "$(field 'd["data"]["version"]')"
check "stale cas=1 is refused (400)" 400 "$(call "$DIR/fleet.header" POST "$KEY" '{"options":{"cas":1},"data":{"gen":"stale"}}')"
check "  -> with the check-and-set message" True \
  "$(field '"check-and-set parameter did not match the current version" in " ".join(d["errors"])')"
check "read (200)" 200 "$(call "$DIR/fleet.header" GET "$KEY")"
check "  -> the cas=1 data, not the stale write" 2 "$(field 'd["data"]["data"]["gen"]')"
check "  -> metadata.version 2" 2 "$(field 'd["data"]["metadata"]["version"]')"
check "metadata read (200)" 200 "$(call "$DIR/fleet.header" GET "$META")"
check "  -> current_version 2" 2 "$(field 'd["data"]["current_version"]')"
check "wrong token (403)" 403 "$(call "$DIR/wrong.header" GET "$KEY")"
check "read-only token reads (200)" 200 "$(call "$DIR/readonly.header" GET "$KEY")"
check "read-only token cannot write (403)" 403 \
  "$(call "$DIR/readonly.header" POST "$KEY" '{"options":{"cas":2},"data":{"gen":"3"}}')"
check "fleet token outside age-oauth/ (403)" 403 \
  "$(call "$DIR/fleet.header" POST "$BAO_KV_MOUNT/data/other/x" '{"data":{"a":"b"}}')"
check "fleet token cannot delete metadata (403)" 403 "$(call "$DIR/fleet.header" DELETE "$META")"
check "audit log records requests" True \
  "$(python3 -c "import json; print(any(json.loads(l).get('request',{}).get('path')=='$KEY' for l in open('$BAO_AUDIT_LOG')))")"

addr_before="$BAO_ADDR"
"$HERE/stop.sh" --dir "$DIR"
check "stopped (health unreachable)" 000 "$(curl -s -o /dev/null -w '%{http_code}' "$BAO_ADDR/v1/sys/health" || true)"
t3=$(now)
"$HERE/start.sh" --dir "$DIR" >"$DIR/restart.out"
t4=$(now)
source "$DIR/env"
check "clean restart: same address" "$addr_before" "$BAO_ADDR"
check "clean restart: read back (200)" 200 "$(call "$DIR/fleet.header" GET "$KEY")"
check "  -> data and version intact" "2/2" "$(field 'd["data"]["data"]["gen"] + "/" + str(d["data"]["metadata"]["version"])')"

kill -9 "$BAO_PID"
for _ in $(seq 50); do kill -0 "$BAO_PID" 2>/dev/null || break; sleep 0.1; done
t5=$(now)
"$HERE/start.sh" --dir "$DIR" >"$DIR/restart2.out"
t6=$(now)
source "$DIR/env"
check "kill -9 restart: cas=2 update (200)" 200 "$(call "$DIR/fleet.header" POST "$KEY" '{"options":{"cas":2},"data":{"gen":"3"}}')"
check "  -> version 3" 3 "$(field 'd["data"]["version"]')"

"$HERE/stop.sh" --dir "$DIR" --purge

# TLS variant (--tls): HTTPS trusted through BAO_CACERT only, kept across a restart.
TLS_DIR="$(mktemp -d /tmp/age-oauth-openbao-prove-tls-XXXXXX)"
WATCH_PID=$$ "$HERE/start.sh" --dir "$TLS_DIR" --tls >"$TLS_DIR/start.out"
source "$TLS_DIR/env"
header "$BAO_TOKEN_FILE" "$TLS_DIR/fleet.header"
check "tls: https address" https "${BAO_ADDR%%://*}"
check "tls: cas=0 create through the CA (200)" 200 "$(curl -sS --cacert "$BAO_CACERT" -o /dev/null -w '%{http_code}' \
  -H "@$TLS_DIR/fleet.header" -H 'Content-Type: application/json' \
  --data-binary '{"options":{"cas":0},"data":{"gen":"1"}}' "$BAO_ADDR/v1/$KEY")"
check "tls: without the CA the certificate is refused (curl 60)" 60 \
  "$(curl -s -o /dev/null "$BAO_ADDR/v1/sys/health"; echo $?)"
"$HERE/stop.sh" --dir "$TLS_DIR"
"$HERE/start.sh" --dir "$TLS_DIR" >"$TLS_DIR/restart.out"
source "$TLS_DIR/env"
check "tls: restart keeps https and the data" "https/1" "$(curl -sS --cacert "$BAO_CACERT" -o "$TLS_DIR/body" \
  -H "@$TLS_DIR/fleet.header" "$BAO_ADDR/v1/$KEY" && python3 -c "import json; d=json.load(open('$TLS_DIR/body')); print('${BAO_ADDR%%://*}/' + d['data']['data']['gen'])")"
"$HERE/stop.sh" --dir "$TLS_DIR" --purge

echo "timings: first start $(secs "$t0" "$t1") s, clean restart $(secs "$t3" "$t4") s, restart after kill -9 $(secs "$t5" "$t6") s"
if [[ $failed -eq 0 ]]; then echo "openbao proof: all checks passed"; else echo "openbao proof: $failed check(s) FAILED"; exit 1; fi
