#!/usr/bin/env python3
"""Benchmarks (not tests) of whole scenarios against `age-oauth sandbox`, release build:
login with the out-of-band code, and N concurrent `token` processes on an expired cache.
Usage: python3 benches/scenarios.py [BINARY]   (benches/scenarios.sh builds and calls it)."""
import json, os, re, statistics, subprocess, sys, tempfile, time, urllib.request

binary = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "target/release/age-oauth")
work = tempfile.mkdtemp(prefix="age-oauth-bench-")
env = {k: v for k, v in os.environ.items() if not k.startswith("AGE_OAUTH_")}
env.update(AGE_OAUTH_HOME=os.path.join(work, "home"), AGE_OAUTH_BROWSER="none", NO_COLOR="1")

sandbox = subprocess.Popen([binary, "sandbox", "--port", "0"], stdout=subprocess.PIPE, env=env, text=True)
portal = re.search(r"(http://127\.0\.0\.1:\d+/portal)", sandbox.stdout.readline()).group(1)
admin = portal.replace("/portal", "/__admin")

def run(*args, **kw):
    return subprocess.run([binary, *args], env={**env, **kw.pop("extra_env", {})}, capture_output=True, text=True, cwd=work, **kw)

def admin_call(path, body=None):
    req = urllib.request.Request(f"{admin}/{path}", data=None if body is None else json.dumps(body).encode(),
                                 method="GET" if body is None else "POST")
    with urllib.request.urlopen(req) as r:
        return json.loads(r.read() or b"{}")

def login(profile):
    """`login --no-browser`, answering with the code from the approval page."""
    t0 = time.perf_counter()
    p = subprocess.Popen([binary, "login", "--profile", profile, "--no-browser", "--force"], env=env, cwd=work,
                         stdin=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in p.stderr:
        m = re.search(r"(http://\S+oauth2/authorize\S+)", line)
        if m:
            page = urllib.request.urlopen(m.group(1)).read().decode()
            code = re.search(r"SUCCESS code=([^<\s]+)", page).group(1)
            p.stdin.write(code + "\n"); p.stdin.close()
            break
    p.wait()
    assert p.returncode == 0, p.stderr.read()
    return (time.perf_counter() - t0) * 1000

try:
    assert run("profile", "add", "prod", "--provider", "esri-oob", "--portal", portal,
               "--client-id", "age-oauth-sandbox").returncode == 0
    times = sorted(login("prod") for _ in range(30))
    print(f"login (esri-oob, code via stdin, 30 runs): median {statistics.median(times):.1f} ms, max {times[-1]:.1f} ms")

    step = 0  # every round moves both clocks half an hour: the cached token is expired for all
    for n in (16, 32):
        rounds, walls = 10, []
        admin_call("reset_counts", {})
        for r in range(1, rounds + 1):
            admin_call("advance_clock", {"seconds": 1800})
            step += 1
            offset = str(step * 1800)
            t0 = time.perf_counter()
            procs = [subprocess.Popen([binary, "token", "--profile", "prod"], env={**env, "AGE_OAUTH_CLOCK_OFFSET": offset},
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=work) for _ in range(n)]
            outs = {p.communicate()[0] for p in procs}
            walls.append((time.perf_counter() - t0) * 1000)
            assert all(p.returncode == 0 for p in procs) and len(outs) == 1
        counts = admin_call("counts")
        print(f"{n} concurrent `token` on an expired cache, {rounds} rounds: wall median {statistics.median(walls):.1f} ms, "
              f"max {max(walls):.1f} ms; token-endpoint calls {counts.get('token', 0)} (one per round)")
finally:
    sandbox.kill()
