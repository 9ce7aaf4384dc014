"""token(), Token, exceptions, the process cache, AGE_OAUTH_PROFILE / AGE_OAUTH_API_KEY, binary lookup
and version check, python -m age_oauth, login() — against the HTTPS Portal simulator."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from datetime import datetime, timezone

import pytest
import requests

import age_oauth
from age_oauth import _bin, _core
from conftest import BIN, ROOT, approve


def test_token_and_token_info(prod, sandbox):
    info = age_oauth.token_info(prod)
    assert age_oauth.token(prod) == info.value and len(info.value) > 20
    assert info.username == "demo"
    assert info.header_name == "X-Esri-Authorization"
    assert info.header == {"X-Esri-Authorization": f"Bearer {info.value}"}
    assert info.service_url == sandbox.portal
    assert info.verify == sandbox.ca
    assert info.expires_at.tzinfo is not None and info.expires_at > datetime.now(timezone.utc)
    assert info.value not in repr(info) and info.value not in str(info)
    who = requests.get(f"{sandbox.portal}/sharing/rest/community/self?f=json", headers=info.header, verify=sandbox.ca)
    assert who.json()["username"] == "demo"


def test_one_subprocess_for_many_calls_and_threads(prod):
    values = set()

    def many():
        for _ in range(50):
            values.add(age_oauth.token(prod))

    threads = [threading.Thread(target=many) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(values) == 1
    assert _core._cache.calls == 1, "one call to the binary, shared by every thread"


def test_age_oauth_profile_selects_the_profile(prod, monkeypatch):
    monkeypatch.setenv("AGE_OAUTH_PROFILE", prod)
    assert age_oauth.token_info().profile == "prod"
    monkeypatch.setenv("AGE_OAUTH_PROFILE", "nope")
    with pytest.raises(age_oauth.ConfigError) as e:
        age_oauth.token()
    assert "nope" in str(e.value) and e.value.exit_code == 2


def test_exceptions_mirror_exit_codes(prod, sandbox):
    with pytest.raises(age_oauth.ConfigError, match="no-such-profile"):
        age_oauth.token("no-such-profile")
    sandbox.revoke_all()
    with pytest.raises(age_oauth.LoginRequired) as dead:
        age_oauth.token(prod, min_ttl=10**9)  # forces a refresh, which the portal refuses
    assert "age-oauth login" in str(dead.value) and isinstance(dead.value, age_oauth.Error)
    assert not str(dead.value).startswith("error:"), "the message is the binary's line without its label"
    sandbox.stop()
    with pytest.raises(age_oauth.ServerError):
        age_oauth.token(prod, min_ttl=10**9)


def test_min_ttl_refreshes_through_the_binary(prod, sandbox):
    first = age_oauth.token(prod)
    fresh = age_oauth.token(prod, min_ttl=10**9)
    assert fresh != first and sandbox.count("token:refresh_token") == 1


def test_api_key_from_the_environment_is_used_without_the_binary(prod, sandbox, monkeypatch):
    real = age_oauth.token(prod)
    _core._cache.clear()
    _core._cache.calls = 0
    monkeypatch.setenv("AGE_OAUTH_API_KEY", real)
    monkeypatch.setenv("AGE_OAUTH_BIN", "/nonexistent/age-oauth")  # any call to the binary would fail
    assert age_oauth.token(prod) == real
    info = age_oauth.token_info(prod)
    assert info.source == "AGE_OAUTH_API_KEY" and info.expires_at is None
    url = f"{sandbox.portal}/sharing/rest/community/self?f=json"
    assert requests.get(url, auth=age_oauth.requests_auth(prod), verify=sandbox.ca).json()["username"] == "demo"
    # A rejected key is not "refreshed": the answer comes back as it is, with no retry.
    sandbox.advance(1801)
    sandbox.reset()
    answer = requests.get(url, auth=age_oauth.requests_auth(prod), verify=sandbox.ca)
    assert answer.json()["error"]["code"] == 498 and not answer.history
    assert sandbox.count("community/self") == 1 and sandbox.count("token:refresh_token") == 0
    assert _core._cache.calls == 0


def test_api_key_takes_the_profiles_header_when_the_binary_is_there(prod, monkeypatch):
    monkeypatch.setenv("AGE_OAUTH_API_KEY", "key-from-ci")
    info = age_oauth.token_info(prod)
    assert (info.value, info.header_name) == ("key-from-ci", "X-Esri-Authorization")
    assert _core._cache.calls == 0, "no token was asked of the binary"
    monkeypatch.setenv("AGE_OAUTH_API_KEY", "")
    assert age_oauth.token(prod) != "key-from-ci", "an empty value is unset"


def test_binary_lookup_without_override_lists_where_it_looked(monkeypatch):
    monkeypatch.delenv("AGE_OAUTH_BIN", raising=False)
    dirs = _bin.candidate_dirs()
    assert dirs[0] == __import__("sysconfig").get_path("scripts")
    assert os.path.join(os.path.dirname(os.path.dirname(_bin.__file__)), "bin") in dirs


def test_an_age_oauth_only_on_path_is_not_used(tmp_path):
    """No blind PATH search (an old Python age-oauth may own that name there): in a fresh venv whose
    scripts dir, user scheme and package folder hold no age-oauth, one on PATH is BinaryNotFound."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    on_path = tmp_path / "on-path"
    on_path.mkdir()
    (on_path / "age-oauth").symlink_to(BIN)
    user = tmp_path / "user"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGE_OAUTH_")}
    env.update(PYTHONPATH=str(ROOT / "python"), HOME=str(tmp_path), PYTHONUSERBASE=str(user),
               PATH=f"{on_path}{os.pathsep}{env.get('PATH', '')}")
    probe = (
        "import age_oauth, age_oauth._bin as b, json\n"
        "try:\n    print(json.dumps(['found', age_oauth.find_age_oauth_bin()]))\n"
        "except age_oauth.BinaryNotFound as e:\n    print(json.dumps(['missing', str(e), b.candidate_dirs()]))\n"
    )
    out = subprocess.run([str(venv / "bin" / "python"), "-c", probe], capture_output=True, text=True, env=env,
                         cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    verdict, message, dirs = json.loads(out.stdout)
    assert verdict == "missing", message
    assert dirs[0] == str(venv / "bin") and str(user / "bin") in dirs and str(on_path) not in dirs
    assert all(d in message for d in dirs) and "AGE_OAUTH_BIN" in message
    # Where the package does look, it is found.
    (venv / "bin" / "age-oauth").symlink_to(BIN)
    out = subprocess.run([str(venv / "bin" / "python"), "-c", probe], capture_output=True, text=True, env=env,
                         cwd=tmp_path)
    assert json.loads(out.stdout) == ["found", str(venv / "bin" / "age-oauth")], out.stderr


def test_a_binary_of_another_version_is_refused(home, tmp_path, monkeypatch):
    old = tmp_path / "age-oauth"
    old.write_text("#!/bin/sh\necho 'age-oauth 0.2.1'\n")  # what the old Python age-oauth's script prints
    old.chmod(0o755)
    monkeypatch.setenv("AGE_OAUTH_BIN", str(old))
    with pytest.raises(age_oauth.VersionMismatch) as e:
        age_oauth.token("prod")
    assert "0.2.1" in str(e.value) and age_oauth.__version__ in str(e.value) and str(old) in str(e.value)
    monkeypatch.setenv("AGE_OAUTH_BIN", str(tmp_path / "missing"))
    with pytest.raises(age_oauth.BinaryNotFound, match="AGE_OAUTH_BIN"):
        age_oauth.token("prod")
    monkeypatch.setenv("AGE_OAUTH_BIN", str(BIN))
    assert age_oauth.find_age_oauth_bin() == str(BIN)


def test_package_version_is_the_crates():
    cargo = (ROOT / "Cargo.toml").read_text()
    assert re.search(r'^version = "([^"]+)"', cargo, re.M).group(1) == age_oauth.__version__


def test_python_m_age_oauth_runs_the_binary(home):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "python")}
    out = subprocess.run([sys.executable, "-m", "age_oauth", "--version"], capture_output=True, text=True, env=env)
    assert out.stdout.strip() == f"age-oauth {age_oauth.__version__}", out.stderr
    out = subprocess.run([sys.executable, "-m", "age_oauth", "token", "--profile", "x"], capture_output=True,
                         text=True, env=env)
    assert out.returncode == 2 and "x" in out.stderr, "exit codes and errors pass through"


def test_login_relays_the_instructions_and_answers_the_prompt(home, sandbox):
    home.ok("profile", "add", "nb", "--provider", "esri-oob", "--portal", sandbox.portal,
            "--client-id", "age-oauth-sandbox", "--verify-ssl", sandbox.ca)
    shown: list[str] = []

    def person(prompt: str) -> str:  # what a notebook user does: open the URL shown, paste the code
        url = re.search(r"(https://\S+oauth2/authorize\S*)", "".join(shown)).group(1)
        shown.append(prompt)
        return approve(sandbox, url)

    tok = age_oauth.login("nb", no_browser=True, output=shown.append, input=person)
    assert tok.username == "demo" and tok.profile == "nb"
    assert any("oauth2/authorize" in line for line in shown), "the sign-in URL reached the notebook"
    assert age_oauth.token("nb") == tok.value
    assert sandbox.count("token:authorization_code") == 1


def test_import_has_no_third_party_dependency():
    env = {**os.environ, "PYTHONPATH": str(ROOT / "python")}
    probe = "import sys, age_oauth; print(sorted(m for m in ('requests', 'httpx', 'arcgis', 'urllib3') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env)
    assert out.stdout.strip() == "[]", out.stderr


def test_a_missing_arcgis_fails_the_arcgis_tests_instead_of_skipping_them(tmp_path):
    fake = tmp_path / "fake" / "arcgis"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ModuleNotFoundError('arcgis is not installed here', name='arcgis')\n")
    base = {k: v for k, v in os.environ.items() if k not in ("CI", "AGE_OAUTH_ALLOW_MISSING_ARCGIS")}
    base.update(PYTHONPATH=str(tmp_path / "fake"), AGE_OAUTH_TEST_BIN=str(BIN))

    def collect(**env):
        return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--collect-only",
                               str(ROOT / "tests" / "python" / "test_arcgis.py")],
                              capture_output=True, text=True, env={**base, **env})

    for env in ({}, {"CI": "true"}, {"CI": "true", "AGE_OAUTH_ALLOW_MISSING_ARCGIS": "1"}):
        out = collect(**env)
        assert out.returncode == 2 and "arcgis is not installed here" in out.stdout, (env, out.stdout + out.stderr)
    out = collect(AGE_OAUTH_ALLOW_MISSING_ARCGIS="1")  # a developer's explicit opt-out, outside CI
    assert out.returncode == 5 and "error" not in out.stdout, "skipped: no test collected, no error"


def test_login_relays_a_device_code_to_the_notebook(home, oidc_provider):
    """Device flow against the real oidc-provider: the code and URL reach `output` while the sign-in
    waits, the person approves elsewhere, and login() returns the token; nothing is asked."""
    from conftest import approve_device

    home.ok("profile", "add", "dev", "--provider", "oidc", "--client-id", "age-oauth-cli",
            "--set", f"issuer={oidc_provider}", "--set", "flow=device")
    shown: list[str] = []
    approved: list[str] = []
    person = threading.Thread()

    def output(text: str) -> None:
        nonlocal person
        shown.append(text)
        found = re.search(r"(http://\S+/device\?user_code=\S+)", text)
        if found and not person.is_alive():  # the person opens the link on a phone meanwhile
            person = threading.Thread(target=lambda: approved.append(approve_device(found.group(1))))
            person.start()

    def no_prompt(prompt: str) -> str:
        raise AssertionError(f"the device flow asked something: {prompt!r}")

    tok = age_oauth.login("dev", output=output, input=no_prompt)
    person.join()
    code = re.search(r"enter the code (\S+)", "".join(shown))
    assert code and f"user_code={code.group(1)}" in "".join(shown), shown
    assert approved == ["Sign-in Success"]
    assert tok.profile == "dev" and tok.provider == "oidc" and tok.value
    assert age_oauth.token("dev") == tok.value
