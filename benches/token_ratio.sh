#!/usr/bin/env bash
# Benchmark (not a test): `age-oauth token` on a valid cache against the process-start floor,
# `age-oauth --version`, run as alternated pairs so that machine noise hits both alike.
# Prints the median of the per-pair ratios token/--version (target: <= 1.2), both medians, and,
# when valgrind is installed, the instruction count of each command (callgrind; repeatable).
# Usage: bash benches/token_ratio.sh [PAIRS] [BINARY]   (default 200 pairs, the release build)
set -euo pipefail
cd "$(dirname "$0")/.."
pairs=${1:-200}
bin=${2:-}
if [ -z "$bin" ]; then
  cargo build --release --locked --quiet
  bin=$PWD/target/release/age-oauth
fi
work=$(mktemp -d)
sandbox_pid=
trap '[ -n "$sandbox_pid" ] && kill $sandbox_pid 2>/dev/null; rm -rf "$work"' EXIT
export AGE_OAUTH_HOME=$work/home AGE_OAUTH_BROWSER=none
unset AGE_OAUTH_PASSPHRASE AGE_OAUTH_IDENTITY AGE_OAUTH_PROFILE
cd "$work"

"$bin" sandbox --port 0 >"$work/sandbox.log" &
sandbox_pid=$!
for _ in $(seq 50); do grep -q "sandbox at" "$work/sandbox.log" 2>/dev/null && break; sleep 0.1; done
portal=$(sed -n 's/.*sandbox at \(http[^ ]*\).*/\1/p' "$work/sandbox.log")
"$bin" profile add bench --provider esri-app --portal "$portal" --client-id age-oauth-sandbox-app \
  --client-secret sandbox-app-secret >/dev/null 2>&1
"$bin" login --profile bench >/dev/null 2>&1

python3 - "$bin" "$pairs" <<'PY'
import os, shutil, statistics, subprocess, sys, time
binary, pairs = sys.argv[1], int(sys.argv[2])
token_args, version_args = ["token", "--profile", "bench"], ["--version"]

def run(args):
    t0 = time.perf_counter_ns()
    p = subprocess.run([binary, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter_ns() - t0
    if p.returncode != 0:
        sys.exit(f"{args} failed: {p.stderr.decode()}")
    return elapsed / 1e6

for _ in range(10):  # warm the page cache and the binary
    run(token_args); run(version_args)
token_ms, version_ms, ratios = [], [], []
for i in range(pairs):
    # Alternate which command goes first, so neither always runs right after the other.
    if i % 2:
        v = run(version_args); t = run(token_args)
    else:
        t = run(token_args); v = run(version_args)
    token_ms.append(t); version_ms.append(v); ratios.append(t / v)

def instructions(args):
    if not shutil.which("valgrind"):
        return None
    out = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", binary, *args],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE).stderr.decode()
    for line in out.splitlines():
        if "Collected :" in line:
            return int(line.split(":")[-1].strip())
    return None

print(f"pairs: {pairs}   binary: {binary}")
print(f"median token/--version ratio of the pairs: {statistics.median(ratios):.3f}")
print(f"ratio of the medians:                      {statistics.median(token_ms) / statistics.median(version_ms):.3f}")
print(f"age-oauth --version  median {statistics.median(version_ms):.2f} ms   instructions {instructions(version_args)}")
print(f"age-oauth token      median {statistics.median(token_ms):.2f} ms   instructions {instructions(token_args)}")
PY
