#!/usr/bin/env bash
# Benchmark (not a test): `age-oauth token` on a valid cache against the process-start floor,
# `age-oauth --version`, run as alternated pairs so that machine noise hits both alike.
# Prints the median of the per-pair ratios token/--version (target: <= 1.2), both medians, and,
# when valgrind is installed, the instruction count of each command (callgrind; repeatable).
# Also the floor: `examples/decrypt_floor`, a process that only reads the identity and the cache
# file and decrypts it (what no `token` can do without), alternated with --version the same way.
# Besides wall time: the CPU time of each process (utime + stime from wait4, less hit by other work
# on the machine than wall time) as a second median ratio, and minor page faults per process.
# The binaries are copied first, as `cargo install` does: a binary as the linker wrote it in place
# sits in the page cache in 4 KiB pieces and takes about 15 more page faults per run than a copy.
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
mkdir "$work/bin"
install -m 755 "$bin" "$work/bin/age-oauth" && bin=$work/bin/age-oauth
if [ -n "$floor" ]; then install -m 755 "$floor" "$work/bin/decrypt_floor" && floor=$work/bin/decrypt_floor; fi
export AGE_OAUTH_HOME=$work/home AGE_OAUTH_BROWSER=none
unset AGE_OAUTH_PASSPHRASE AGE_OAUTH_IDENTITY AGE_OAUTH_PROFILE
cd "$work"

"$bin" sandbox --port 0 >"$work/sandbox.log" &
sandbox_pid=$!
for _ in $(seq 50); do grep -q "sandbox at" "$work/sandbox.log" 2>/dev/null && break; sleep 0.1; done
portal=$(sed -n 's/^ArcGIS Portal sandbox at \(http[^ ]*\).*/\1/p' "$work/sandbox.log")
"$bin" profile add bench --provider esri-app --portal "$portal" --client-id age-oauth-sandbox-app \
  --client-secret sandbox-app-secret >/dev/null 2>&1
"$bin" login --profile bench >/dev/null 2>&1

python3 - "$bin" "$pairs" "$floor" "$work/home" <<'PY'
import os, shutil, statistics, subprocess, sys, time
binary, pairs, floor, home = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
token_cmd, version_cmd = [binary, "token", "--profile", "bench"], [binary, "--version"]
floor_cmd = [floor, f"{home}/identity.txt", f"{home}/cache/bench.age"] if floor else None
faults = {}  # command label -> minor page faults of each run

def run(command, label):
    """Runs `command` with stdout to /dev/null: (wall ms, CPU ms), and records its page faults."""
    t0 = time.perf_counter_ns()
    pid = os.posix_spawn(command[0], command, os.environ,
                         file_actions=[(os.POSIX_SPAWN_OPEN, 1, "/dev/null", os.O_WRONLY, 0)])
    _, status, usage = os.wait4(pid, 0)
    elapsed = time.perf_counter_ns() - t0
    if status != 0:
        sys.exit(f"{command} failed (status {status})")
    faults.setdefault(label, []).append(usage.ru_minflt)
    return elapsed / 1e6, (usage.ru_utime + usage.ru_stime) * 1e3

for _ in range(10):  # warm the page cache and the binary
    run(token_cmd, "warm"); run(version_cmd, "warm")

def alternate(first, second):
    """Over alternated pairs: median ratio first/second of wall time and of CPU time, median wall ms of each."""
    a_ms, b_ms, ratios, cpu_ratios = [], [], [], []
    for i in range(pairs):
        # Alternate which command goes first, so neither always runs right after the other.
        if i % 2:
            b = run(*second); a = run(*first)
        else:
            a = run(*first); b = run(*second)
        a_ms.append(a[0]); b_ms.append(b[0]); ratios.append(a[0] / b[0]); cpu_ratios.append(a[1] / b[1])
    return (statistics.median(ratios), statistics.median(cpu_ratios),
            statistics.median(a_ms), statistics.median(b_ms))

ratio, cpu_ratio, token_med, version_med = alternate((token_cmd, "token"), (version_cmd, "--version"))
if floor_cmd:
    floor_ratio, floor_cpu_ratio, floor_med, _ = alternate((floor_cmd, "floor"), (version_cmd, "--version"))

def instructions(command):
    if not shutil.which("valgrind"):
        return None
    out = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *command],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE).stderr.decode()
    for line in out.splitlines():
        if "Collected :" in line:
            return int(line.split(":")[-1].strip())
    return None

def pf(label):
    return statistics.median(faults[label])

print(f"pairs: {pairs}   binary: {binary}   load average: {os.getloadavg()[0]:.2f}")
print(f"median token/--version ratio of the pairs: {ratio:.3f}   (target <= 1.2)")
print(f"  the same for CPU time (utime+stime): {cpu_ratio:.3f}")
print(f"age-oauth --version  median {version_med:.2f} ms   instructions {instructions(version_cmd)}"
      f"   page faults {pf('--version'):.0f}")
print(f"age-oauth token      median {token_med:.2f} ms   instructions {instructions(token_cmd)}"
      f"   page faults {pf('token'):.0f}")
if floor_cmd:
    print(f"floor (decrypt only) median {floor_med:.2f} ms   instructions {instructions(floor_cmd)}"
          f"   page faults {pf('floor'):.0f}   floor/--version ratio of the pairs: {floor_ratio:.3f}"
          f" (CPU time {floor_cpu_ratio:.3f})")
PY
