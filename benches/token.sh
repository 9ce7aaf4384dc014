#!/usr/bin/env bash
# Benchmark (not a test): what `age-oauth token` costs on a valid cache, next to the cost of
# starting the same binary for `--version`. Prints median, p99 and max wall time and max RSS.
# Usage: bash benches/token.sh [RUNS]   (default 300). Needs only the release build and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-300}
cargo build --release --locked --quiet
bin=$PWD/target/release/age-oauth
work=$(mktemp -d)
trap 'kill $sandbox_pid 2>/dev/null || true; rm -rf "$work"' EXIT
export AGE_OAUTH_HOME=$work/home AGE_OAUTH_BROWSER=none
unset AGE_OAUTH_PASSPHRASE AGE_OAUTH_IDENTITY AGE_OAUTH_PROFILE
cd "$work"

"$bin" sandbox --port 0 >"$work/sandbox.log" &
sandbox_pid=$!
for _ in $(seq 50); do grep -q "sandbox at" "$work/sandbox.log" 2>/dev/null && break; sleep 0.1; done
portal=$(sed -n 's/^ArcGIS Portal sandbox at \(http[^ ]*\).*/\1/p' "$work/sandbox.log")
"$bin" profile add bench --provider esri-app --portal "$portal" --client-id age-oauth-sandbox-app \
  --client-secret sandbox-app-secret 2>/dev/null
"$bin" login --profile bench 2>/dev/null

python3 - "$bin" "$runs" <<'PY'
import os, statistics, subprocess, sys, time
binary, runs = sys.argv[1], int(sys.argv[2])

def peak_rss_kib(args):
    # One extra run under GNU time: the peak RSS of that process alone.
    p = subprocess.run(["/usr/bin/time", "-f", "%M", binary, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return int(p.stderr.decode().strip().splitlines()[-1])

def measure(args):
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        p = subprocess.run([binary, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        times.append((time.perf_counter() - t0) * 1000)
        if p.returncode != 0:
            sys.exit(f"{args} failed: {p.stderr.decode()}")
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.99) - 1], times[-1], peak_rss_kib(args)

print(f"runs per command: {runs}")
print(f"{'command':<34} {'median ms':>10} {'p99 ms':>8} {'max ms':>8} {'max RSS KiB':>12}")
for label, args in [("age-oauth --version (baseline)", ["--version"]),
                    ("age-oauth token (valid cache)", ["token", "--profile", "bench"])]:
    med, p99, mx, rss = measure(args)
    print(f"{label:<34} {med:>10.2f} {p99:>8.2f} {mx:>8.2f} {rss:>12}")
PY
