"""Exceptions that mirror the binary's exit codes; the message is the binary's one-line error."""

from __future__ import annotations


class Error(Exception):
    """Any age-oauth failure (exit code 1 unless a subclass says otherwise)."""

    exit_code = 1


class ConfigError(Error):
    """Usage or configuration error (exit code 2): unknown profile, bad setting, credentials refused for a host."""

    exit_code = 2


class LoginRequired(Error):
    """No usable login (exit code 3): run `age-oauth login` (or `age_oauth.login()` in a notebook)."""

    exit_code = 3


class ServerError(Error):
    """The server refused or could not be reached (exit code 4)."""

    exit_code = 4


class BinaryNotFound(Error, FileNotFoundError):
    """The age-oauth executable is not where this package looked for it."""


class VersionMismatch(Error):
    """The executable found is not the one this package belongs to (e.g. the old Python age-oauth's script)."""


_BY_CODE = {2: ConfigError, 3: LoginRequired, 4: ServerError}


def from_exit(code: int, stderr: str) -> Error:
    """The exception for a failed run of the binary: its last `error:` line, typed by the exit code."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line[len("error:"):].strip() for line in lines if line.startswith("error:")]
    message = errors[-1] if errors else (lines[-1] if lines else f"age-oauth exited with code {code}")
    return _BY_CODE.get(code, Error)(message)
