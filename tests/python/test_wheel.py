"""The wheel itself: built with maturin from this repository (offline), installed into a fresh venv and
with `pip install --target`; its `age-oauth`, `import age_oauth`, `python -m age_oauth`, AGE_OAUTH_BIN.
Built in cargo's dev profile (reuses target/debug); AGE_OAUTH_WHEEL_RELEASE=1 builds --release."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

import age_oauth
from conftest import ROOT

VERSION = age_oauth.__version__


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    maturin = Path(sys.executable).parent / "maturin"
    release = ["--release"] if os.environ.get("AGE_OAUTH_WHEEL_RELEASE") == "1" else []
    started = time.monotonic()
    built = subprocess.run([str(maturin), "build", "--locked", "--offline", *release, "-o", str(out)],
                           cwd=ROOT, capture_output=True, text=True)
    assert built.returncode == 0, built.stderr[-3000:]
    print(f"maturin build {' '.join(release)}: {time.monotonic() - started:.1f} s")
    (found,) = out.glob(f"age_oauth-{VERSION}-py3-none-*.whl")
    return found


def clean_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGE_OAUTH_") and k != "PYTHONPATH"}
    env.update(extra)
    return env


def test_wheel_holds_the_binary_and_the_package(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert f"age_oauth-{VERSION}.data/scripts/age-oauth" in names
    assert "age_oauth/__init__.py" in names and "age_oauth/_bin.py" in names
    assert not any(n.startswith("tests/") for n in names)


def test_wheel_metadata_has_no_dependency_but_the_extras(wheel):
    """The core package depends on nothing; requests, httpx and arcgis come only with their extras."""
    from email.parser import Parser

    with zipfile.ZipFile(wheel) as z:
        metadata = Parser().parsestr(z.read(f"age_oauth-{VERSION}.dist-info/METADATA").decode())
    assert metadata["Name"] == "age-oauth" and metadata["Version"] == VERSION
    requires = metadata.get_all("Requires-Dist") or []
    extra_of = {r: re.search(r"""extra\s*==\s*["']([\w-]+)["']""", r) for r in requires}
    assert [r for r, m in extra_of.items() if m is None] == [], "no dependency outside an extra"
    by_extra = {m.group(1): r.split(";")[0].strip() for r, m in extra_of.items()}
    assert set(by_extra) == {"requests", "httpx", "arcgis"}, requires
    assert all(re.match(rf"{name}\b", spec) for name, spec in by_extra.items()), by_extra
    assert {"requests", "httpx", "arcgis"} <= set(metadata.get_all("Provides-Extra") or [])


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("venv") / "fresh"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    subprocess.run([sys.executable, "-m", "pip", "--python", str(root / "bin" / "python"), "install", "-q",
                    "--no-index", "--no-deps", "--disable-pip-version-check", str(wheel)], check=True)
    return root


def test_fresh_venv_gets_the_binary_on_its_path_and_the_import(venv, tmp_path):
    out = subprocess.run([str(venv / "bin" / "age-oauth"), "--version"], capture_output=True, text=True)
    assert out.stdout.strip() == f"age-oauth {VERSION}"
    probe = "import age_oauth, json; print(json.dumps([age_oauth.__version__, age_oauth.find_age_oauth_bin()]))"
    out = subprocess.run([str(venv / "bin" / "python"), "-c", probe], capture_output=True, text=True,
                         env=clean_env(), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == [VERSION, str(venv / "bin" / "age-oauth")]
    out = subprocess.run([str(venv / "bin" / "python"), "-m", "age_oauth", "--version"], capture_output=True,
                         text=True, env=clean_env(), cwd=tmp_path)
    assert out.stdout.strip() == f"age-oauth {VERSION}", out.stderr


def test_installed_package_gets_a_token_with_its_own_binary(venv, prod, sandbox):
    env = clean_env(AGE_OAUTH_HOME=os.environ["AGE_OAUTH_HOME"], HOME=os.environ["HOME"])
    probe = "import age_oauth; t = age_oauth.token_info('prod'); print(t.username, t.service_url)"
    out = subprocess.run([str(venv / "bin" / "python"), "-c", probe], capture_output=True, text=True, env=env)
    assert out.stdout.split() == ["demo", sandbox.portal], out.stderr


def test_age_oauth_bin_overrides_and_is_version_checked(venv, tmp_path):
    right, wrong = tmp_path / "right", tmp_path / "wrong"
    right.write_text(f"#!/bin/sh\necho 'age-oauth {VERSION}'\n")
    wrong.write_text("#!/bin/sh\necho 'age-oauth 0.2.1'\n")
    for f in (right, wrong):
        f.chmod(0o755)
    probe = "import age_oauth; print(age_oauth.find_age_oauth_bin())"
    python = str(venv / "bin" / "python")
    out = subprocess.run([python, "-c", probe], capture_output=True, text=True, env=clean_env(AGE_OAUTH_BIN=str(right)))
    assert out.stdout.strip() == str(right), out.stderr
    out = subprocess.run([python, "-c", probe], capture_output=True, text=True, env=clean_env(AGE_OAUTH_BIN=str(wrong)))
    assert out.returncode != 0 and "VersionMismatch" in out.stderr and "0.2.1" in out.stderr and VERSION in out.stderr


def test_pip_install_target_is_found_next_to_the_package(wheel, tmp_path):
    target = tmp_path / "target"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps",
                    "--disable-pip-version-check", "--target", str(target), str(wheel)], check=True)
    probe = "import age_oauth; print(age_oauth.find_age_oauth_bin())"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         env=clean_env(PYTHONPATH=str(target)), cwd=tmp_path)
    assert out.stdout.strip() == str(target / "bin" / "age-oauth"), out.stderr
