#!/usr/bin/env bash
# Starts a throw-away Kerberos realm for the tests: MIT krb5kdc + Apache httpd with mod_auth_gssapi,
# both on 127.0.0.1, everything (config, database, keytabs, logs, PIDs) under $PEER_DIR; nothing under /etc.
#   PEER_DIR   work dir (required; created)      KDC_PORT / HTTP_PORT   default: free ports
#   WATCH_PID  optional: when this process ends (the test binary), stop everything and delete $PEER_DIR
# Writes $PEER_DIR/env (sourceable): KRB5_CONFIG, KRB_REALM, KRB_URL, KRB_USER_KEYTAB, ...
# Packages: tests/setup/kerberos.sh.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
: "${PEER_DIR:?set PEER_DIR to a work directory}"
mkdir -p "$PEER_DIR"/{www/protected,www/public,rcache,run}
DIR="$(cd "$PEER_DIR" && pwd)"
# Armed first, so even a failed start is cleaned up when the test process ends, however it ends.
if [[ -n "${WATCH_PID:-}" ]]; then
  nohup bash -c "while kill -0 $WATCH_PID 2>/dev/null; do sleep 1; done; PEER_DIR='$DIR' '$HERE/stop.sh' --purge" \
    >/dev/null 2>&1 </dev/null &
fi
export PATH="$PATH:/usr/sbin:/sbin"
for tool in krb5kdc kdb5_util kadmin.local kinit apache2; do
  command -v "$tool" >/dev/null || { echo "missing $tool: run tests/setup/kerberos.sh (as root) first" >&2; exit 3; }
done
[[ -f /usr/lib/apache2/modules/mod_auth_gssapi.so ]] || { echo "missing mod_auth_gssapi: run tests/setup/kerberos.sh" >&2; exit 3; }
REALM=EXAMPLE.TEST
busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# Below the kernel's ephemeral range, so no outgoing connection can be holding the port.
read -r EPHEMERAL_LOW _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || EPHEMERAL_LOW=32768
free_port() {
  local p span=$((EPHEMERAL_LOW > 12000 ? EPHEMERAL_LOW - 11000 : 20000))
  while :; do p=$((10000 + (RANDOM * 32768 + RANDOM) % span)); busy "$p" || { echo "$p"; return; }; done
}
FIXED_KDC_PORT="${KDC_PORT:-}" FIXED_HTTP_PORT="${HTTP_PORT:-}"
KDC_PORT="${KDC_PORT:-$(free_port)}"
HTTP_PORT="${HTTP_PORT:-$(free_port)}"

export KRB5_CONFIG="$DIR/krb5.conf" KRB5_KDC_PROFILE="$DIR/kdc.conf" KRB5RCACHEDIR="$DIR/rcache"
write_krb5_conf() {
cat >"$KRB5_CONFIG" <<CONF
[libdefaults]
  default_realm = $REALM
  dns_lookup_kdc = false
  dns_lookup_realm = false
  dns_canonicalize_hostname = false
  rdns = false
  udp_preference_limit = 1
[realms]
  $REALM = {
    kdc = 127.0.0.1:$KDC_PORT
  }
[domain_realm]
  localhost = $REALM
  127.0.0.1 = $REALM
CONF
}
write_kdc_conf() {
cat >"$KRB5_KDC_PROFILE" <<CONF
[kdcdefaults]
  kdc_listen = 127.0.0.1:$KDC_PORT
  kdc_tcp_listen = 127.0.0.1:$KDC_PORT
[realms]
  $REALM = {
    database_name = $DIR/principal
    key_stash_file = $DIR/stash
    acl_file = $DIR/kadm5.acl
    default_principal_flags = +preauth
    supported_enctypes = aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal
  }
[logging]
  kdc = FILE:$DIR/kdc.log
CONF
}
write_krb5_conf
write_kdc_conf
: >"$DIR/kadm5.acl"
if [[ ! -f "$DIR/principal" ]]; then
  kdb5_util create -s -r "$REALM" -P "stash-$RANDOM-$RANDOM" >/dev/null 2>&1
  for user in alice bob; do kadmin.local -q "addprinc -pw $user-password $user" >/dev/null 2>&1; done
  kadmin.local -q "addprinc -randkey HTTP/localhost" >/dev/null 2>&1
  kadmin.local -q "addprinc -randkey HTTP/127.0.0.1" >/dev/null 2>&1
  kadmin.local -q "ktadd -k $DIR/http.keytab HTTP/localhost HTTP/127.0.0.1" >/dev/null 2>&1
  # alice's own keys, so a test can `kinit -kt` with no password anywhere
  kadmin.local -q "ktadd -k $DIR/alice.keytab -norandkey alice" >/dev/null 2>&1
fi

start_kdc() {
  : >"$DIR/kdc.log"
  krb5kdc -n -r "$REALM" >"$DIR/kdc.out" 2>&1 </dev/null &
  echo $! >"$DIR/run/kdc.pid"
  for _ in $(seq 50); do
    busy "$KDC_PORT" && return 0
    kill -0 "$(cat "$DIR/run/kdc.pid")" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}
if ! { [[ -f "$DIR/run/kdc.pid" ]] && kill -0 "$(cat "$DIR/run/kdc.pid")" 2>/dev/null; }; then
  for attempt in 1 2 3 4 5; do
    start_kdc && break
    # A port taken meanwhile (UDP or TCP): another free port, unless the caller fixed it.
    kill "$(cat "$DIR/run/kdc.pid")" 2>/dev/null || true
    [[ -z "$FIXED_KDC_PORT" && $attempt -lt 5 ]] || { echo "krb5kdc did not start:" >&2; cat "$DIR/kdc.out" "$DIR/kdc.log" >&2 2>/dev/null; exit 1; }
    KDC_PORT="$(free_port)"; write_krb5_conf; write_kdc_conf
  done
fi

# Apache's children run as an unprivileged user: it must reach the keytab and the pages.
RUN_USER=www-data; id "$RUN_USER" >/dev/null 2>&1 || RUN_USER=nobody
if [[ "$(id -u)" == 0 ]]; then
  d="$DIR"; while [[ "$d" != / ]]; do chmod o+x "$d" 2>/dev/null || true; d="$(dirname "$d")"; done
  chown "$RUN_USER" "$DIR/http.keytab" "$DIR/rcache"
fi
echo "hello from a Kerberos-protected page" >"$DIR/www/protected/index.html"
echo "public" >"$DIR/www/public/index.html"
chmod -R o+rX "$DIR/www"
MODULES=/usr/lib/apache2/modules
cat >"$DIR/httpd.conf" <<CONF
ServerRoot "$DIR"
ServerName localhost
Listen 127.0.0.1:$HTTP_PORT
PidFile "$DIR/run/httpd.pid"
DefaultRuntimeDir "$DIR/run"
Mutex file:$DIR/run
ErrorLog "$DIR/httpd-error.log"
LogLevel warn auth_gssapi:info
LogFormat "%h %u \"%r\" %>s" brief
CustomLog "$DIR/httpd-access.log" brief
User $RUN_USER
Group $(id -gn "$RUN_USER")
LoadModule mpm_event_module $MODULES/mod_mpm_event.so
LoadModule authn_core_module $MODULES/mod_authn_core.so
LoadModule authz_core_module $MODULES/mod_authz_core.so
LoadModule authz_user_module $MODULES/mod_authz_user.so
LoadModule auth_gssapi_module $MODULES/mod_auth_gssapi.so
LoadModule headers_module $MODULES/mod_headers.so
LoadModule dir_module $MODULES/mod_dir.so
LoadModule mime_module $MODULES/mod_mime.so
StartServers 1
ServerLimit 1
ThreadsPerChild 8
MaxRequestWorkers 8
TypesConfig /etc/mime.types
DocumentRoot "$DIR/www"
DirectoryIndex index.html
<Directory />
  Require all denied
</Directory>
<Directory "$DIR/www">
  Require all granted
</Directory>
<Location /protected>
  AuthType GSSAPI
  AuthName "Kerberos $REALM"
  GssapiCredStore keytab:$DIR/http.keytab
  GssapiAllowedMech krb5
  GssapiBasicAuth Off
  Require valid-user
  Header always set X-Remote-User "expr=%{REMOTE_USER}"
</Location>
CONF
start_apache() {
  sed -i "s/^Listen 127.0.0.1:.*/Listen 127.0.0.1:$HTTP_PORT/" "$DIR/httpd.conf"
  # The children inherit KRB5_CONFIG and friends: nothing is read from /etc/krb5*.
  KRB5_KTNAME="FILE:$DIR/http.keytab" apache2 -f "$DIR/httpd.conf" -k start 2>>"$DIR/httpd-error.log" || return 1
  for _ in $(seq 50); do [[ -s "$DIR/run/httpd.pid" ]] && busy "$HTTP_PORT" && return 0; sleep 0.1; done
  return 1
}
if ! { [[ -f "$DIR/run/httpd.pid" ]] && kill -0 "$(cat "$DIR/run/httpd.pid")" 2>/dev/null; }; then
  for attempt in 1 2 3 4 5; do
    start_apache && break
    [[ -z "$FIXED_HTTP_PORT" && $attempt -lt 5 ]] || { echo "apache2 did not start:" >&2; tail -20 "$DIR/httpd-error.log" >&2; exit 1; }
    HTTP_PORT="$(free_port)"
  done
fi

cat >"$DIR/env" <<ENV
export KRB5_CONFIG='$DIR/krb5.conf'
export KRB_REALM='$REALM'
export KRB_URL='http://localhost:$HTTP_PORT/protected/'
export KRB_PUBLIC_URL='http://localhost:$HTTP_PORT/public/'
export KRB_USER_KEYTAB='$DIR/alice.keytab'
export KRB_KDC_PORT='$KDC_PORT' KRB_HTTP_PORT='$HTTP_PORT'
ENV

echo "Kerberos realm $REALM: KDC 127.0.0.1:$KDC_PORT, Apache http://localhost:$HTTP_PORT/protected/ (env: $DIR/env)"
