#!/usr/bin/env bash
# Benchmark (not a test): the wall time of a full `okta-esri` login against the simulators that
# `age-oauth sandbox` serves (portal authorize → saml/authorize → Okta authn [+ MFA] →
# sessionCookieRedirect → SSO → ACS → code redeemed), per factor: none, TOTP, and push (approved at
# the first poll, so it includes one 4 s poll interval by design). Prints median and max per kind.
# Usage: bash benches/okta_login.sh [RUNS]   (default 10; push runs RUNS/3, at least 2)
#        AGE_OAUTH_BENCH_BIN=target/debug/age-oauth bash benches/okta_login.sh   # skip the release build
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-10}
if [ -n "${AGE_OAUTH_BENCH_BIN:-}" ]; then bin=$(realpath "$AGE_OAUTH_BENCH_BIN"); else
  cargo build --release --locked --quiet; bin=$PWD/target/release/age-oauth; fi
work=$(mktemp -d)
trap 'kill $sandbox_pid 2>/dev/null || true; rm -rf "$work"' EXIT
export AGE_OAUTH_HOME=$work/home AGE_OAUTH_BROWSER=none AGE_OAUTH_PASSWORD=okta-password
unset AGE_OAUTH_PASSPHRASE AGE_OAUTH_IDENTITY AGE_OAUTH_PROFILE AGE_OAUTH_MFA_CODE
cd "$work"

"$bin" sandbox --port 0 >"$work/sandbox.log" &
sandbox_pid=$!
for _ in $(seq 100); do grep -q "federated with it" "$work/sandbox.log" 2>/dev/null && break; sleep 0.1; done
okta=$(sed -n 's/^Okta org sandbox at \(http[^ ]*\).*/\1/p' "$work/sandbox.log")
portal=$(sed -n 's/^ArcGIS portal federated with it (SAML) at \(http[^ ]*\).*/\1/p' "$work/sandbox.log")
for user in nomfa totp push; do
  "$bin" profile add "$user" --provider okta-esri --set "portal=$portal" --set client_id=age-oauth-sandbox \
    --set "okta=$okta" --set "username=$user@example.test" --set remember_device=false >/dev/null 2>&1
done

python3 - "$bin" "$runs" <<'PY'
import hashlib, hmac, os, statistics, struct, subprocess, sys, time
binary, runs = sys.argv[1], int(sys.argv[2])

def totp(seed=b"12345678901234567890"):  # RFC 6238, the sandbox's seed
    mac = hmac.new(seed, struct.pack(">Q", int(time.time()) // 30), hashlib.sha1).digest()
    o = mac[-1] & 15
    return "%06d" % ((struct.unpack(">I", mac[o:o + 4])[0] & 0x7FFFFFFF) % 1_000_000)

def login(profile):
    env = dict(os.environ)
    if profile == "totp":
        env["AGE_OAUTH_MFA_CODE"] = totp()
    t0 = time.perf_counter()
    p = subprocess.run([binary, "login", "--force", "--profile", profile], env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    if p.returncode != 0:
        sys.exit(f"login {profile} failed: {p.stderr.decode()}")
    return (time.perf_counter() - t0) * 1000

print(f"{'okta-esri login':<34} {'runs':>5} {'median ms':>10} {'max ms':>8}")
for label, profile, n in [("password only (no MFA)", "nomfa", runs), ("password + TOTP", "totp", runs),
                          ("password + push (1 poll of 4 s)", "push", max(2, runs // 3))]:
    times = sorted(login(profile) for _ in range(n))
    print(f"{label:<34} {n:>5} {statistics.median(times):>10.1f} {times[-1]:>8.1f}")
PY
