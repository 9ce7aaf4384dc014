#!/usr/bin/env bash
# Benchmark (not a test): what a fleet store (issue 13) adds to `age-oauth token`. Three cases, each
# the median, p99 and max wall time of RUNS runs of the release binary:
#   token, no store             an esri-app profile with a valid local cache (the baseline)
#   token, store, fresh local   the same profile shared through OpenBao, local copy fresh: no request
#   token, store read + adopt   a second host with no local copy: one KV v2 read, decrypt, local write
# Needs tests/setup/openbao.sh (the real OpenBao) and python3.
# Usage: bash benches/fleet.sh [RUNS]   (default 200)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
runs=${1:-200}
cargo build --release --locked --quiet
bin=$PWD/target/release/age-oauth
work=$(mktemp -d)
bao_dir=$work/openbao
trap 'kill $sandbox_pid 2>/dev/null || true; "$root/tests/peers/openbao/stop.sh" --dir "$bao_dir" >/dev/null; rm -rf "$work"' EXIT
unset AGE_OAUTH_PASSPHRASE AGE_OAUTH_IDENTITY AGE_OAUTH_PROFILE VAULT_TOKEN BAO_TOKEN
export AGE_OAUTH_BROWSER=none AGE_OAUTH_KEYRING=off
cd "$work"

bash "$root/tests/peers/openbao/start.sh" --dir "$bao_dir" >/dev/null
# shellcheck disable=SC1091
source "$bao_dir/env"
"$bin" sandbox --port 0 >"$work/sandbox.log" &
sandbox_pid=$!
for _ in $(seq 50); do grep -q "sandbox at" "$work/sandbox.log" 2>/dev/null && break; sleep 0.1; done
portal=$(sed -n 's/^ArcGIS Portal sandbox at \(http[^ ]*\).*/\1/p' "$work/sandbox.log")

key_a=$(AGE_OAUTH_HOME=$work/a "$bin" key show)
key_b=$(AGE_OAUTH_HOME=$work/b "$bin" key show)
for host in a b; do
  cat >"$work/$host/config.toml" <<TOML
[profiles.plain]
provider = "esri-app"
portal = "$portal"
client_id = "age-oauth-sandbox-app"

[profiles.fleet]
provider = "esri-app"
portal = "$portal"
client_id = "age-oauth-sandbox-app"

[profiles.fleet.store]
url = "vault+$BAO_ADDR/age-oauth/bench"
token_file = "$BAO_TOKEN_FILE"
recipients = ["$key_a", "$key_b"]
TOML
done
export AGE_OAUTH_CLIENT_SECRET=sandbox-app-secret
AGE_OAUTH_HOME=$work/a "$bin" login --profile plain 2>/dev/null
AGE_OAUTH_HOME=$work/a "$bin" login --profile fleet 2>/dev/null
AGE_OAUTH_HOME=$work/b "$bin" token --profile fleet >/dev/null

python3 - "$bin" "$runs" "$work" <<'PY'
import os, statistics, subprocess, sys, time
binary, runs, work = sys.argv[1], int(sys.argv[2]), sys.argv[3]

def run(home, profile):
    env = dict(os.environ, AGE_OAUTH_HOME=f"{work}/{home}")
    t0 = time.perf_counter()
    p = subprocess.run([binary, "token", "--profile", profile], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    elapsed = (time.perf_counter() - t0) * 1000
    if p.returncode != 0:
        sys.exit(f"{home} {profile} failed: {p.stderr.decode()}")
    return elapsed

def forget_b():
    try:
        os.remove(f"{work}/b/cache/fleet.age")
    except FileNotFoundError:
        pass

# The three cases alternate run by run, so a machine busy with other work weighs on each alike.
cases = [("token, no store", "a", "plain", None),
         ("token, store, fresh local", "a", "fleet", None),
         ("token, store read + adopt", "b", "fleet", forget_b)]
times = {label: [] for label, *_ in cases}
for _ in range(runs):
    for label, home, profile, before in cases:
        if before:
            before()
        times[label].append(run(home, profile))
print(f"runs per case: {runs} (interleaved)")
print(f"{'case':<30} {'median ms':>10} {'p99 ms':>8} {'max ms':>8}")
for label, *_ in cases:
    t = sorted(times[label])
    print(f"{label:<30} {statistics.median(t):>10.2f} {t[int(len(t) * 0.99) - 1]:>8.2f} {t[-1]:>8.2f}")
PY
