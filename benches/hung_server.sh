#!/usr/bin/env bash
# Benchmark (not a test): N parallel `age-oauth token` calls against a token endpoint that
# accepts connections and never answers. Prints when each process ended and how many
# connections the server saw. Usage: bash benches/hung_server.sh [N] [TIMEOUT_S]
# (default 3 processes, the default 60 s HTTP timeout). See docs/performance.md.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-3}
timeout_s=${2:-}
cargo build --release --locked --quiet
bin=$PWD/target/release/age-oauth
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 - "$bin" "$work" "$n" "$timeout_s" <<'PY'
import os, socket, subprocess, sys, threading, time
binary, work, n, timeout_s = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(64)
port = listener.getsockname()[1]
held, count = [], [0]
def accept():
    while True:
        conn, _ = listener.accept()
        count[0] += 1
        held.append(conn)  # never answered
threading.Thread(target=accept, daemon=True).start()
env = {k: v for k, v in os.environ.items() if not k.startswith("AGE_OAUTH_")}
env.update(AGE_OAUTH_HOME=f"{work}/home", AGE_OAUTH_BROWSER="none")
if timeout_s:
    env["AGE_OAUTH_HTTP_TIMEOUT"] = timeout_s
subprocess.run([binary, "profile", "add", "hung", "--provider", "esri-app", "--portal",
                f"http://127.0.0.1:{port}/portal", "--client-id", "c", "--client-secret", "s"],
               env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=work)
start = time.monotonic()
procs = [subprocess.Popen([binary, "token", "--profile", "hung"], env=env, cwd=work,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for _ in range(n)]
ended = []
for p in procs:
    p.wait()
    ended.append((time.monotonic() - start, p.returncode))
print(f"{n} parallel `token` on a never-answering server (HTTP timeout {timeout_s or 60} s):")
print("  ended after " + ", ".join(f"{t:.1f} s (exit {rc})" for t, rc in sorted(ended)))
print(f"  connections the server saw: {count[0]}")
PY
