#!/usr/bin/env bash
# Starts a real SAML 2.0 IdP for the tests: Debian's SimpleSAMLphp (tests/setup/saml.sh) under PHP's
# built-in web server on 127.0.0.1, with all its config, a throw-away signing key and certificate (made
# here with openssl), sessions and logs in one state dir; nothing under /etc is read or written.
#
# Usage: start.sh --sp-entity-id ID --acs-url URL [--dir DIR] [--port PORT]
#   --sp-entity-id ID  the one service provider the IdP knows (e.g. the Portal simulator's entity ID)
#   --acs-url URL      that SP's AssertionConsumerService (HTTP-POST binding), e.g.
#                      http://127.0.0.1:PORT/portal/sharing/rest/oauth2/saml/signin
#   --dir DIR          state dir (or PEER_DIR=DIR; default: a new temp dir). Again with the same DIR while
#                      the server runs: only the SP is replaced (config is read per request; an unknown SP
#                      gets an HTML error page with HTTP 200); after stop.sh: restarted on the same port
#                      with the same key.
#   WATCH_PID          optional: when that process ends (the test binary), stop the IdP and delete DIR.
# Users (exampleauth:UserPass, SP-initiated HTTP-Redirect or IdP-initiated SSO, login form at
# /module.php/core/loginuserpass.php with fields username/password): alice / alice-password and
# bob / bob-password; attributes uid, email, givenName, surname; NameID = uid, format unspecified.
# Responses and assertions are both signed (RSA-SHA256) with DIR/cert/idp.crt.
# Prints KEY=VALUE lines on stdout (and writes them as `export` lines to DIR/env):
#   SAML_IDP_ENTITY_ID, SAML_SSO_URL (HTTP-Redirect binding), SAML_SLO_URL, SAML_IDP_METADATA_URL,
#   SAML_IDP_CERT (PEM path), SAML_USERNAME, SAML_PASSWORD, SAML_BASE_URL, SAML_STATE_DIR, SAML_PID
# Stop: stop.sh --dir DIR [--purge]. Exit codes: 2 usage, 3 not installed, 1 did not start.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
DIR="${PEER_DIR:-}" SP_ENTITY_ID="" ACS_URL="" FIXED_PORT=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --dir) DIR="${2:?--dir needs a directory}"; shift 2 ;;
    --sp-entity-id) SP_ENTITY_ID="${2:?--sp-entity-id needs a value}"; shift 2 ;;
    --acs-url) ACS_URL="${2:?--acs-url needs a URL}"; shift 2 ;;
    --port) FIXED_PORT="${2:?--port needs a number}"; shift 2 ;;
    -h|--help) sed -n '2,/^set /{/^#/p}' "$0"; exit 0 ;;
    *) echo "start.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
[[ -n "$SP_ENTITY_ID" && -n "$ACS_URL" ]] || { echo "usage: start.sh --sp-entity-id ID --acs-url URL [--dir DIR]" >&2; exit 2; }
[[ "$ACS_URL" =~ ^https?://(127\.[0-9.]+|localhost|\[::1\])(:[0-9]+)?/ ]] ||
  { echo "start.sh: --acs-url must be a loopback http(s) URL, got $ACS_URL" >&2; exit 2; }
[[ -n "$DIR" ]] || DIR="$(mktemp -d /tmp/age-oauth-saml-XXXXXX)"
mkdir -p "$DIR"
DIR="$(cd "$DIR" && pwd)"
chmod 700 "$DIR"
# Armed first, so even a failed start is cleaned up when the test process ends, however it ends.
if [[ -n "${WATCH_PID:-}" ]]; then
  nohup bash -c "while kill -0 $WATCH_PID 2>/dev/null; do sleep 1; done; '$HERE/stop.sh' --dir '$DIR' --purge" \
    >/dev/null 2>&1 </dev/null &
fi
SSP=/usr/share/simplesamlphp
for tool in php openssl xmlsec1 curl python3; do
  command -v "$tool" >/dev/null || { echo "missing $tool: run tests/setup/saml.sh first" >&2; exit 3; }
done
[[ -f "$SSP/www/saml2/idp/SSOService.php" ]] || { echo "SimpleSAMLphp is not installed in $SSP: run tests/setup/saml.sh" >&2; exit 3; }
php -r 'exit(extension_loaded("dom") && extension_loaded("mbstring") && extension_loaded("openssl") ? 0 : 1);' ||
  { echo "PHP lacks dom/mbstring/openssl: run tests/setup/saml.sh" >&2; exit 3; }

busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# Below the kernel's ephemeral range, so no outgoing connection can be holding the port.
read -r EPHEMERAL_LOW _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || EPHEMERAL_LOW=32768
free_port() {
  local p span=$((EPHEMERAL_LOW > 12000 ? EPHEMERAL_LOW - 11000 : 20000))
  while :; do p=$((10000 + (RANDOM * 32768 + RANDOM) % span)); busy "$p" || { echo "$p"; return; }; done
}
running() { [[ -f "$DIR/server.pid" ]] && kill -0 "$(cat "$DIR/server.pid")" 2>/dev/null; }
# PHP string literal (single-quoted) for a value given on the command line.
phpq() { python3 -c "import sys; print(\"'\" + sys.argv[1].replace('\\\\', '\\\\\\\\').replace(\"'\", \"\\\\'\") + \"'\")" "$1"; }
rand() { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }

mkdir -p "$DIR"/{config,metadata,cert,log,data,tmp,sessions}
# The signing key stays across restarts of the same DIR (an SP may have pinned the certificate).
if [[ ! -s "$DIR/cert/idp.crt" ]]; then
  (umask 077; openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 30 -subj '/CN=age-oauth test IdP' \
    -keyout "$DIR/cert/idp.key" -out "$DIR/cert/idp.crt" 2>/dev/null)
fi
[[ -s "$DIR/secretsalt" ]] || (umask 077; rand >"$DIR/secretsalt")

write_config() {
  local base="http://127.0.0.1:$PORT/"
  cat >"$DIR/config/config.php" <<PHP
<?php
// Written by tests/peers/saml/start.sh: a test IdP on 127.0.0.1, everything under $DIR.
\$config = [
    'baseurlpath' => '$base',
    'certdir' => '$DIR/cert/',
    'loggingdir' => '$DIR/log/',
    'datadir' => '$DIR/data/',
    'tempdir' => '$DIR/tmp',
    'technicalcontact_name' => 'age-oauth tests',
    'technicalcontact_email' => 'tests@age-oauth.invalid',
    'timezone' => 'UTC',
    'secretsalt' => '$(cat "$DIR/secretsalt")',
    'auth.adminpassword' => '$(rand)',
    'admin.protectindexpage' => true,
    'admin.protectmetadata' => false,
    'errorreporting' => false,
    'showerrors' => true,
    'debug' => ['saml' => false, 'backtraces' => true, 'validatexml' => false],
    'logging.level' => SimpleSAML\Logger::INFO,
    'logging.handler' => 'file',
    'logging.logfile' => 'simplesamlphp.log',
    'enable.saml20-idp' => true,
    'enable.shib13-idp' => false,
    'module.enable' => ['exampleauth' => true, 'core' => true, 'saml' => true, 'admin' => true],
    'store.type' => 'phpsession',
    'session.phpsession.savepath' => '$DIR/sessions',
    'session.phpsession.cookiename' => 'SimpleSAMLSessionID',
    'session.cookie.secure' => false,
    'session.cookie.samesite' => null,
    'session.duration' => 8 * 60 * 60,
    'language.available' => ['en'],
    'language.default' => 'en',
    'metadata.sources' => [['type' => 'flatfile', 'directory' => '$DIR/metadata']],
    'metadata.sign.enable' => false,
];
PHP
  cat >"$DIR/config/authsources.php" <<'PHP'
<?php
// Written by tests/peers/saml/start.sh: the test users (exampleauth:UserPass).
$config = [
    'admin' => ['core:AdminPassword'],
    'example-userpass' => [
        'exampleauth:UserPass',
        'alice:alice-password' => [
            'uid' => ['alice'], 'email' => ['alice@example.test'],
            'givenName' => ['Alice'], 'surname' => ['Example'],
        ],
        'bob:bob-password' => [
            'uid' => ['bob'], 'email' => ['bob@example.test'],
            'givenName' => ['Bob'], 'surname' => ['Example'],
        ],
    ],
];
PHP
  cat >"$DIR/metadata/saml20-idp-hosted.php" <<'PHP'
<?php
// Written by tests/peers/saml/start.sh: this IdP (entity ID = its metadata URL).
$metadata['__DYNAMIC:1__'] = [
    'host' => '__DEFAULT__',
    'privatekey' => 'idp.key',
    'certificate' => 'idp.crt',
    'auth' => 'example-userpass',
    'signature.algorithm' => 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
    'saml20.sign.response' => true,
    'saml20.sign.assertion' => true,
    'authproc' => [
        3 => [
            'class' => 'saml:AttributeNameID',
            'attribute' => 'uid',
            'Format' => 'urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified',
        ],
    ],
];
PHP
  cat >"$DIR/metadata/saml20-sp-remote.php" <<PHP
<?php
// Written by tests/peers/saml/start.sh: the one service provider (--sp-entity-id, --acs-url).
\$metadata[$(phpq "$SP_ENTITY_ID")] = [
    'AssertionConsumerService' => [[
        'Binding' => 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST',
        'Location' => $(phpq "$ACS_URL"),
        'index' => 0,
    ]],
    'NameIDFormat' => 'urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified',
    'simplesaml.attributes' => true,
    'attributes.NameFormat' => 'urn:oasis:names:tc:SAML:2.0:attrname-format:basic',
];
PHP
  # Empty lists for the metadata sets SimpleSAMLphp looks up on the way.
  for set in saml20-idp-remote saml20-sp-hosted shib13-idp-hosted shib13-sp-remote; do
    echo '<?php' >"$DIR/metadata/$set.php"
  done
  chmod 600 "$DIR/config/"*.php "$DIR/cert/idp.key"
}

start_php() {
  : >"$DIR/server.log"
  # Two workers: a test's SP can call back into the IdP while a request is in flight. Its own process
  # group (setsid), so stop.sh ends the workers with the parent.
  SIMPLESAMLPHP_CONFIG_DIR="$DIR/config" PHP_CLI_SERVER_WORKERS=2 \
    nohup setsid php -S "127.0.0.1:$PORT" -t "$SSP/www" >>"$DIR/server.log" 2>&1 </dev/null &
  echo $! >"$DIR/server.pid"
  STARTED_HERE=1
  # Generous: CI's two cores may be busy compiling.
  for _ in $(seq 300); do
    [[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/saml2/idp/metadata.php" 2>/dev/null)" == 200 ]] && return 0
    running || return 1
    sleep 0.05
  done
  return 1
}

# A start that fails after the server is up does not leave it running (the state dir stays, for its logs).
on_exit() { local rc=$?; [[ $rc -ne 0 && -n "${STARTED_HERE:-}" ]] && "$HERE/stop.sh" --dir "$DIR"; return $rc; }
trap on_exit EXIT
started_at=$(date +%s.%N)
if running; then
  PORT="$(cat "$DIR/port")"
  write_config   # the SP given now is the one the running IdP serves (config is read per request)
else
  # A restart in the same DIR keeps its address: the IdP's entity ID contains the port.
  [[ -z "$FIXED_PORT" && -s "$DIR/port" ]] && FIXED_PORT="$(cat "$DIR/port")"
  for attempt in 1 2 3 4 5; do
    PORT="${FIXED_PORT:-$(free_port)}"
    write_config
    start_php && break
    kill "$(cat "$DIR/server.pid")" 2>/dev/null || true
    [[ -z "$FIXED_PORT" && $attempt -lt 5 ]] || { echo "SimpleSAMLphp did not start:" >&2; tail -20 "$DIR/server.log" >&2; exit 1; }
  done
  echo "$PORT" >"$DIR/port"
fi
BASE="http://127.0.0.1:$PORT"
# The IdP's own metadata must name itself and carry our certificate.
curl -sS "$BASE/saml2/idp/metadata.php" >"$DIR/idp-metadata.xml"
cert_b64="$(sed -e '/-----/d' "$DIR/cert/idp.crt" | tr -d '\n')"
grep -q "$cert_b64" "$DIR/idp-metadata.xml" ||
  { echo "SimpleSAMLphp's metadata does not carry $DIR/cert/idp.crt:" >&2; head -c 2000 "$DIR/idp-metadata.xml" >&2; exit 1; }
elapsed=$(python3 -c "import time; print(f'{time.time() - $started_at:.2f}')")

cat >"$DIR/env" <<ENV
export SAML_IDP_ENTITY_ID='$BASE/saml2/idp/metadata.php'
export SAML_SSO_URL='$BASE/saml2/idp/SSOService.php'
export SAML_SLO_URL='$BASE/saml2/idp/SingleLogoutService.php'
export SAML_IDP_METADATA_URL='$BASE/saml2/idp/metadata.php'
export SAML_IDP_CERT='$DIR/cert/idp.crt'
export SAML_USERNAME='alice'
export SAML_PASSWORD='alice-password'
export SAML_BASE_URL='$BASE'
export SAML_STATE_DIR='$DIR'
export SAML_PID='$(cat "$DIR/server.pid")'
ENV
sed -e 's/^export //' -e "s/'//g" "$DIR/env"
echo "SimpleSAMLphp IdP: $BASE ready in ${elapsed} s (SP $SP_ENTITY_ID; state: $DIR)" >&2
