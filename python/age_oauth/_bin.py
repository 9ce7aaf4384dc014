"""Finds the age-oauth executable the way uv's and ruff's Python packages find theirs (no blind PATH
search), honours AGE_OAUTH_BIN, and checks that the executable's version is this package's."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import sysconfig
import threading
from pathlib import Path

from ._errors import BinaryNotFound, VersionMismatch
from ._version import __version__

_checked: dict[tuple[str, int, int], str] = {}
_checked_lock = threading.Lock()


def _exe_name() -> str:
    return "age-oauth" + (sysconfig.get_config_var("EXE") or "")


def _prefix_scripts() -> str | None:
    """`<prefix>/bin` when this package sits in `<prefix>/lib/pythonX.Y/site-packages/age_oauth`
    (`pip install --prefix`, `uv run --with`); `Scripts` for `Lib/site-packages` on Windows."""
    parts = Path(__file__).resolve().parent.parts
    if len(parts) >= 4 and parts[-2] == "site-packages":
        if parts[-4] == "lib" and parts[-3].startswith("python"):
            return str(Path(*parts[:-4], "bin"))
        if parts[-3] == "Lib":
            return str(Path(*parts[:-3], "Scripts"))
    return None


def _target_scripts() -> str:
    """`<target>/bin` next to the package, where `pip install --target DIR` puts scripts."""
    return str(Path(__file__).resolve().parent.parent / "bin")


def _user_scripts() -> str | None:
    try:
        scheme = sysconfig.get_preferred_scheme("user")
    except (AttributeError, KeyError):
        scheme = "nt_user" if os.name == "nt" else "posix_user"
    try:
        return sysconfig.get_path("scripts", scheme=scheme)
    except KeyError:
        return None


def candidate_dirs() -> list[str]:
    """Where the executable is looked for, in order."""
    dirs = [
        sysconfig.get_path("scripts"),
        sysconfig.get_path("scripts", vars={"base": sys.base_prefix}),
        _prefix_scripts(),
        _target_scripts(),
        _user_scripts(),
    ]
    seen: list[str] = []
    for d in dirs:
        if d and d not in seen:
            seen.append(d)
    return seen


def find_age_oauth_bin() -> str:
    """The path of the age-oauth executable: `AGE_OAUTH_BIN` if set, else the first of `candidate_dirs()`
    holding it. Its version is checked against this package's (`VersionMismatch` otherwise)."""
    override = os.environ.get("AGE_OAUTH_BIN", "")
    if override:
        if not os.path.isfile(override):
            raise BinaryNotFound(f"AGE_OAUTH_BIN={override} is not a file")
        return _checked_version(override)
    name = _exe_name()
    dirs = candidate_dirs()
    for d in dirs:
        path = os.path.join(d, name)
        if os.path.isfile(path):
            return _checked_version(path)
    raise BinaryNotFound(
        f"could not find the {name} executable of the age-oauth package in: {', '.join(dirs)}; "
        "reinstall it (`pip install --force-reinstall age-oauth`) or set AGE_OAUTH_BIN to its path"
    )


def _checked_version(path: str) -> str:
    stat = os.stat(path)
    key = (os.path.abspath(path), stat.st_mtime_ns, stat.st_size)
    with _checked_lock:
        if key in _checked:
            return _checked[key]
        try:
            out = subprocess.run(
                [path, "--version"], stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30
            )
            answer = (out.stdout or out.stderr).strip()
        except (OSError, subprocess.SubprocessError) as e:
            raise VersionMismatch(f"the executable at {path} could not be run: {e}") from e
        match = re.fullmatch(r"age-oauth (\S+)", answer)
        found = match.group(1) if match else None
        if found != __version__:
            shown = f"version {found}" if found else f"not age-oauth (it answered {answer[:80]!r})"
            raise VersionMismatch(
                f"the age-oauth executable at {path} is {shown}, but the Python package age_oauth is version "
                f"{__version__} (an older Python age-oauth may own a script of the same name); reinstall with "
                f"`pip install --force-reinstall age-oauth=={__version__}`, or set AGE_OAUTH_BIN to a matching executable"
            )
        _checked[key] = path
        return path
