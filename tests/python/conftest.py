"""Shared fixtures: the age-oauth binary (AGE_OAUTH_TEST_BIN or target/debug), a throw-away CA and server
certificate (openssl), the Portal simulator over HTTPS (`age-oauth sandbox --tls-cert`), a temp home
and a signed-in profile."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "python"))  # the package under test, from the source tree

import age_oauth  # noqa: E402
from age_oauth import _bin, _core  # noqa: E402


def _binary() -> Path:
    path = Path(os.environ.get("AGE_OAUTH_TEST_BIN") or ROOT / "target" / "debug" / "age-oauth")
    if not path.is_file():
        pytest.exit(f"{path} is missing: build it first (`cargo build`)", returncode=2)
    return path


BIN = _binary()


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="session")
def tls(tmp_path_factory) -> dict:
    """A CA (ca.pem) and a certificate for 127.0.0.1 / localhost signed by it (cert.pem, key.pem)."""
    d = tmp_path_factory.mktemp("tls")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=age-oauth test CA",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    openssl("req", *ec, "-keyout", "key.pem", "-out", "srv.csr", "-subj", "/CN=127.0.0.1", cwd=d)
    (d / "ext.cnf").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
    )
    openssl("x509", "-req", "-in", "srv.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "cert.pem", "-days", "2", "-extfile", "ext.cnf", cwd=d)
    return {"ca": str(d / "ca.pem"), "cert": str(d / "cert.pem"), "key": str(d / "key.pem")}


class Sandbox:
    """`age-oauth sandbox` over HTTPS, and its admin hooks."""

    def __init__(self, tls: dict):
        self.ca = tls["ca"]
        self.proc = subprocess.Popen(
            [str(BIN), "sandbox", "--port", "0", "--tls-cert", tls["cert"], "--tls-key", tls["key"]],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        first = self.proc.stdout.readline()
        match = re.search(r"(https://\S+/portal)", first)
        if not match:
            self.proc.kill()
            raise RuntimeError(f"the sandbox did not start: {first}{self.proc.stdout.read()}")
        self.portal = match.group(1)
        self.root = self.portal[: -len("/portal")]

    def _admin(self, action: str, body: dict | None = None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"{self.root}/__admin/{action}", data=data, method="POST" if data is not None else "GET")
        req.add_header("Content-Type", "application/json")
        import ssl

        with urllib.request.urlopen(req, context=ssl.create_default_context(cafile=self.ca), timeout=10) as r:
            return json.loads(r.read())

    def counts(self) -> dict:
        return self._admin("counts")

    def count(self, key: str) -> int:
        return self.counts().get(key, 0)

    def requests_log(self) -> list:
        return self._admin("requests")

    def reset(self) -> None:
        self._admin("reset_counts", {})

    def advance(self, seconds: int) -> None:
        self._admin("advance_clock", {"seconds": seconds})

    def configure(self, **changes) -> dict:
        return self._admin("config", changes)

    def revoke_all(self) -> None:
        self._admin("revoke_all", {})

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()
        self.proc.stdout.close()


@pytest.fixture
def sandbox(tls):
    sim = Sandbox(tls)
    yield sim
    sim.stop()


class Home:
    """A temp AGE_OAUTH_HOME and a clean environment for the binary and the package."""

    def __init__(self, path: Path):
        self.path = path
        self.work = path / "work"
        self.work.mkdir()

    def run(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([str(BIN), *args], input=input, capture_output=True, text=True, cwd=self.work)

    def ok(self, *args: str) -> str:
        out = self.run(*args)
        assert out.returncode == 0, f"age-oauth {' '.join(args)}: {out.stderr}"
        return out.stdout


@pytest.fixture
def home(tmp_path, monkeypatch):
    for name in list(os.environ):
        if name.startswith("AGE_OAUTH_") or name in ("ESRI_API_KEY", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AGE_OAUTH_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("AGE_OAUTH_BROWSER", "none")
    monkeypatch.setenv("AGE_OAUTH_BIN", str(BIN))
    monkeypatch.setenv("NO_COLOR", "1")
    h = Home(tmp_path)
    monkeypatch.chdir(h.work)
    _core._cache.clear()
    _core._profile_info_cache.clear()
    _core._cache.calls = 0
    yield h
    _core._cache.clear()


def approve(sandbox: Sandbox, url: str) -> str:
    """Plays the person: the sandbox approves the sign-in at once; returns the code on its page."""
    import requests

    page = requests.get(url, verify=sandbox.ca, allow_redirects=False, timeout=10).text
    return re.search(r"SUCCESS code=([^<\s]+)", page).group(1)


def login_profile(home: Home, sandbox: Sandbox, name: str = "prod") -> None:
    """`profile add` (esri-oob, the sandbox CA as verify_ssl) and `login --no-browser` answered by `approve`."""
    home.ok("profile", "add", name, "--provider", "esri-oob", "--portal", sandbox.portal,
            "--client-id", "age-oauth-sandbox", "--verify-ssl", sandbox.ca)
    proc = subprocess.Popen([str(BIN), "login", "--profile", name, "--no-browser"], cwd=home.work, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    seen = []
    for line in proc.stderr:
        seen.append(line)
        match = re.search(r"(https://\S+oauth2/authorize\S*)", line)
        if match:
            proc.stdin.write(approve(sandbox, match.group(1)) + "\n")
            proc.stdin.close()
            break
    seen.append(proc.stderr.read())
    assert proc.wait() == 0, "".join(seen)


@pytest.fixture
def prod(home, sandbox) -> str:
    """A signed-in profile `prod` at the HTTPS sandbox; returns its name."""
    login_profile(home, sandbox)
    sandbox.reset()
    return "prod"


class ErrorBodyServer:
    """A plain-HTTP loopback server that answers its first `failures` requests with HTTP 200 and an
    ArcGIS error body (`{"error": {"code": N}}`), then `{"ok": true}`; it records each request's headers."""

    def __init__(self, code: int, failures: int = 1):
        import http.server
        import threading

        self.seen: list = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                server.seen.append(dict(self.headers))
                failing = len(server.seen) <= failures
                body = {"error": {"code": code, "message": "Token Required", "details": []}} if failing else {"ok": True}
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/rest/services?f=json"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def error_body_499():
    server = ErrorBodyServer(499)
    yield server
    server.stop()


REFERER = "https://scripts.example.test"


@pytest.fixture
def referer_profile(home, sandbox) -> str:
    """A signed-in profile `ref` (esri-token, generateToken `client=referer`) whose tokens the sandbox
    accepts only with `Referer: REFERER`; returns its name."""
    home.ok("profile", "add", "ref", "--provider", "esri-token", "--portal", sandbox.portal, "--verify-ssl",
            sandbox.ca, "--set", "username=demo", "--set", f"referer={REFERER}")
    out = subprocess.run([str(BIN), "login", "--profile", "ref"], cwd=home.work, capture_output=True, text=True,
                         stdin=subprocess.DEVNULL, env={**os.environ, "AGE_OAUTH_PASSWORD": "demo-password"})
    assert out.returncode == 0, out.stderr
    sandbox.reset()
    return "ref"


@pytest.fixture
def oidc_provider(tmp_path):
    """The real oidc-provider (tests/peers/oidc, installed by tests/setup/oidc.sh) on a free port; its issuer URL."""
    peer = ROOT / "tests" / "peers" / "oidc"
    work = tmp_path / "oidc-provider"
    started = subprocess.run(["bash", str(peer / "start.sh"), str(work)], capture_output=True, text=True)
    assert started.returncode == 0, f"oidc-provider did not start (bash tests/setup/oidc.sh installs it): {started.stderr}"
    yield started.stdout.strip()
    subprocess.run(["bash", str(peer / "stop.sh"), str(work)], capture_output=True)


def approve_device(url: str) -> str:
    """Plays the person at oidc-provider's device page (`verification_uri_complete`): submits the code,
    confirms; the server's interaction signs in its test user. Returns the last page's title."""
    import requests

    session = requests.Session()
    page = session.get(url, timeout=10)
    for _ in range(4):
        action = re.search(r'<form[^>]*action="([^"]+)"', page.text)
        if action is None:
            break
        fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.text))
        if "Device Login Confirmation" in page.text:
            fields["confirm"] = "yes"
        page = session.post(requests.compat.urljoin(page.url, action.group(1)), data=fields, timeout=10)
    return re.search(r"<title>([^<]*)</title>", page.text).group(1)
