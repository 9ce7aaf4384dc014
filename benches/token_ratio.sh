#!/usr/bin/env bash
# Benchmark (not a test): `age-oauth token` on a valid cache against the process-start floor,
# `age-oauth --version`, run as alternated pairs so that machine noise hits both alike.
# Prints the median of the per-pair ratios token/--version (target: <= 1.2), both medians, and,
# when valgrind is installed, the instruction count of each command (callgrind; repeatable).
# Also the floor: `examples/decrypt_floor`, a process that only reads the identity and the cache
# file and decrypts it (what no `token` can do without), alternated with --version the same way.
# Usage: bash benches/token_ratio.sh [PAIRS] [BINARY [FLOOR]]   (default 200 pairs, the release build)
set -euo pipefail
cd "$(dirname "$0")/.."
pairs=${1:-200}
bin=${2:-}
floor=${3:-}
if [ -z "$bin" ]; then
  cargo build --release --locked --quiet --bin age-oauth --example decrypt_floor
  bin=$PWD/target/release/age-oauth
  floor=$PWD/target/release/examples/decrypt_floor
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

python3 - "$bin" "$pairs" "$floor" "$work/home" <<'PY'
import os, shutil, statistics, subprocess, sys, time
binary, pairs, floor, home = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
token_args, version_args = ["token", "--profile", "bench"], ["--version"]
floor_cmd = [floor, f"{home}/identity.txt", f"{home}/cache/bench.age"] if floor else None

def run(args, program=None):
    command = program if program else [binary, *args]
    t0 = time.perf_counter_ns()
    p = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter_ns() - t0
    if p.returncode != 0:
        sys.exit(f"{args} failed: {p.stderr.decode()}")
    return elapsed / 1e6

for _ in range(10):  # warm the page cache and the binary
    run(token_args); run(version_args)
def alternate(first, second):
    """Median ratio of `first`/`second` over alternated pairs, and both medians (ms)."""
    a_ms, b_ms, ratios = [], [], []
    for i in range(pairs):
        # Alternate which command goes first, so neither always runs right after the other.
        if i % 2:
            b = second(); a = first()
        else:
            a = first(); b = second()
        a_ms.append(a); b_ms.append(b); ratios.append(a / b)
    return statistics.median(ratios), statistics.median(a_ms), statistics.median(b_ms)

ratio, token_med, version_med = alternate(lambda: run(token_args), lambda: run(version_args))
floor_ratio = None
if floor_cmd:
    floor_ratio, floor_med, _ = alternate(lambda: run(None, floor_cmd), lambda: run(version_args))

def instructions(args, program=None):
    if not shutil.which("valgrind"):
        return None
    command = program if program else [binary, *args]
    out = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *command],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE).stderr.decode()
    for line in out.splitlines():
        if "Collected :" in line:
            return int(line.split(":")[-1].strip())
    return None

print(f"pairs: {pairs}   binary: {binary}   load average: {os.getloadavg()[0]:.2f}")
print(f"median token/--version ratio of the pairs: {ratio:.3f}   (target <= 1.2)")
print(f"age-oauth --version  median {version_med:.2f} ms   instructions {instructions(version_args)}")
print(f"age-oauth token      median {token_med:.2f} ms   instructions {instructions(token_args)}")
if floor_cmd:
    print(f"floor (decrypt only) median {floor_med:.2f} ms   instructions {instructions(None, floor_cmd)}"
          f"   floor/--version ratio of the pairs: {floor_ratio:.3f}")
PY
