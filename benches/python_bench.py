"""Benchmark (not a test) of the Python package against the HTTPS sandbox; run by benches/python.sh.

1. age_oauth.token() warm (process cache) and cold (one subprocess), and the bare `age-oauth token`.
2. 1,000 loopback requests over one requests.Session: requests_auth() versus a fixed header
   (interleaved blocks, so drift hits both arms alike), and the auth object's own work per request.
3. get_gis(): this package versus the old Python age-oauth 0.2.1 (tests/python/.legacy), same app,
   same sandbox; each measured in its own process (both are imported as `age_oauth`).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PORTAL, CA, PROFILE = os.environ["BENCH_PORTAL"], os.environ["BENCH_CA"], "bench"


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def bench_token() -> dict:
    sys.path.insert(0, os.path.join(ROOT, "python"))
    import age_oauth

    started = time.perf_counter()
    age_oauth.token(PROFILE)
    cold = time.perf_counter() - started
    n = 100_000
    started = time.perf_counter()
    for _ in range(n):
        age_oauth.token(PROFILE)
    warm = (time.perf_counter() - started) / n
    runs = []
    for _ in range(50):
        started = time.perf_counter()
        subprocess.run([os.environ["AGE_OAUTH_BIN"], "token", "--profile", PROFILE, "--json"], check=True,
                       capture_output=True)
        runs.append(time.perf_counter() - started)
    return {"token() cold (one subprocess, incl. version check)": ms(cold),
            "token() warm, per call": f"{warm * 1e6:.2f} µs",
            "age-oauth token --json subprocess, median of 50": ms(statistics.median(runs))}


def bench_requests() -> dict:
    import requests

    import age_oauth

    url = f"{PORTAL}/sharing/rest/portals/self?f=json"
    fixed = requests.Session()
    fixed.verify = CA
    fixed.headers.update(age_oauth.token_info(PROFILE).header)
    authed = requests.Session()
    authed.verify = CA
    authed.auth = age_oauth.requests_auth(PROFILE)
    for s in (fixed, authed):  # warm the connections
        for _ in range(20):
            assert s.get(url).json()["appInfo"]
    # Interleaved blocks; each block's ratio auth/fixed, so machine load hits both arms alike.
    wall = {"fixed": [], "auth": []}
    cpu = {"fixed": 0.0, "auth": 0.0}
    for _ in range(20):
        for name, s in (("fixed", fixed), ("auth", authed)):
            started, cpu_started = time.perf_counter(), time.process_time()
            for _ in range(50):
                s.get(url).raise_for_status()
            wall[name].append(time.perf_counter() - started)
            cpu[name] += time.process_time() - cpu_started
    ratios = [a / f for a, f in zip(wall["auth"], wall["fixed"])]
    fixed_total, auth_total = sum(wall["fixed"]), sum(wall["auth"])
    # The auth object's own work per request, alone: __call__ (token from the process cache, header,
    # hook) and the response hook (status and small-JSON check) on a real 200 answer.
    answer = fixed.get(url)
    prepared = requests.Request("GET", url).prepare()
    answer.request = prepared
    n = 20_000
    started = time.perf_counter()
    for _ in range(n):
        prepared.hooks["response"].clear()
        authed.auth(prepared)
        authed.auth._on_response(answer, stream=False)
    own = (time.perf_counter() - started) / n
    per_request = fixed_total / 1000
    return {"1,000 requests, fixed header (wall)": ms(fixed_total),
            "1,000 requests, requests_auth() (wall)": ms(auth_total),
            "requests_auth() overhead, median of 20 block ratios (wall)": f"{(statistics.median(ratios) - 1) * 100:+.2f} %",
            "requests_auth() overhead, client CPU time": f"{(cpu['auth'] / cpu['fixed'] - 1) * 100:+.2f} %",
            "requests_auth() own work per request": f"{own * 1e6:.1f} µs = {own / per_request * 100:.2f} % of a {per_request * 1000:.2f} ms request"}


GIS_PROBE = r"""
import json, sys, time
started = time.perf_counter()
import age_oauth
imported = time.perf_counter() - started
kind = sys.argv[1]
times = []
for _ in range(5):
    started = time.perf_counter()
    gis = age_oauth.get_gis("bench") if kind == "new" else age_oauth.get_gis(connection="bench", prompt_if_missing=False)
    times.append(time.perf_counter() - started)
assert gis.properties["appInfo"]["appId"] == "age-oauth-sandbox-app"
print(json.dumps({"import": imported, "first": times[0], "next": sorted(times[1:])[len(times[1:]) // 2]}))
"""


def bench_get_gis() -> dict:
    results = {}
    for kind, path in (("new", os.path.join(ROOT, "python")), ("old", os.path.join(ROOT, "tests/python/.legacy"))):
        env = {**os.environ, "PYTHONPATH": path}
        out = subprocess.run([sys.executable, "-c", GIS_PROBE, kind], capture_output=True, text=True, env=env)
        if out.returncode != 0:
            raise SystemExit(f"get_gis probe ({kind}) failed:\n{out.stderr[-3000:]}")
        r = json.loads(out.stdout.strip().splitlines()[-1])
        label = "age-oauth (this package)" if kind == "new" else "old Python age-oauth 0.2.1"
        results[f"{label}: import age_oauth"] = ms(r["import"])
        results[f"{label}: first get_gis() (incl. arcgis import)"] = ms(r["first"])
        results[f"{label}: next get_gis(), median of 4"] = ms(r["next"])
    return results


if __name__ == "__main__":
    report = {}
    report.update(bench_token())
    report.update(bench_requests())
    report.update(bench_get_gis())
    width = max(map(len, report))
    for key, value in report.items():
        print(f"{key:<{width}}  {value}")
