"""Tokens from the age-oauth executable (`token --json`), kept in a process-wide cache shared by threads:
one subprocess per refresh, and concurrent callers wait for that one call (single flight per profile)."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable, Optional
from urllib.parse import urlsplit

from ._bin import find_age_oauth_bin
from ._errors import ConfigError, Error, from_exit

#: Default seconds a cached token must stay valid (the binary's default refresh margin).
DEFAULT_MIN_TTL = 60
ESRI_HEADER = "X-Esri-Authorization"


@dataclass(frozen=True)
class Token:
    """A bearer token and what goes with it. `repr()` never shows `value`."""

    value: str = field(repr=False)
    expires_at: Optional[datetime]
    username: Optional[str]
    header_name: str
    profile: Optional[str] = None
    provider: Optional[str] = None
    service_url: Optional[str] = None
    referer: Optional[str] = None
    #: True, False, or the path of a PEM CA bundle (the profile's `verify_ssl`).
    verify: object = True
    #: "age-oauth" (from the binary's cache) or "AGE_OAUTH_API_KEY" (from the environment; never refreshed).
    source: str = "age-oauth"

    def __post_init__(self) -> None:
        # Computed once: these are read on every request.
        expiry = None if self.expires_at is None else self.expires_at.timestamp()
        object.__setattr__(self, "_expiry", expiry)
        object.__setattr__(self, "_service_origin", None if self.service_url is None else origin(self.service_url))

    @property
    def header(self) -> dict:
        """`{header_name: "Bearer <value>"}`, ready for a request's headers."""
        return {self.header_name: f"Bearer {self.value}"}

    def valid_for(self, seconds: float) -> bool:
        """True when the token stays valid for at least `seconds` more (always, without an expiry)."""
        return self._expiry is None or self._expiry - time.time() >= seconds

    @property
    def refreshable(self) -> bool:
        return self.source == "age-oauth"


def _parse(text: str) -> Token:
    try:
        data = json.loads(text)
        value = data["access_token"]
    except (ValueError, KeyError, TypeError) as e:
        raise Error(f"age-oauth token --json answered something unexpected ({type(e).__name__})") from None
    unix = data.get("expires_at_unix")
    expires_at = datetime.fromtimestamp(unix, tz=timezone.utc) if isinstance(unix, (int, float)) else None
    if expires_at is None and isinstance(data.get("expires_at"), str):
        expires_at = datetime.fromisoformat(data["expires_at"].replace("Z", "+00:00"))
    return Token(
        value=value,
        expires_at=expires_at,
        username=data.get("username"),
        header_name=data.get("header_name") or "Authorization",
        profile=data.get("profile"),
        provider=data.get("provider"),
        service_url=data.get("service_url"),
        referer=data.get("referer"),
        verify=data.get("verify_ssl", True),
    )


def run_binary(args: list[str]) -> str:
    """Runs the executable with `args` (no shell, no stdin); returns stdout. Warnings on its stderr are
    passed on to ours; a failure raises the exception of its exit code with its one-line error."""
    path = find_age_oauth_bin()
    try:
        proc = subprocess.run([path, *args], stdin=subprocess.DEVNULL, capture_output=True, text=True)
    except OSError as e:
        raise Error(f"cannot run {path}: {e}") from None
    if proc.returncode != 0:
        raise from_exit(proc.returncode, proc.stderr)
    if proc.stderr.strip():
        sys.stderr.write(proc.stderr)
    return proc.stdout


def _profile_args(profile: Optional[str]) -> list[str]:
    return ["--profile", profile] if profile else []


def _selected(profile: Optional[str]) -> Optional[str]:
    return profile or os.environ.get("AGE_OAUTH_PROFILE") or None


class _Cache:
    """Tokens per (profile, working directory); a lock per key makes concurrent refreshes one call."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._tokens: dict[tuple, Token] = {}
        self._locks: dict[tuple, threading.Lock] = {}
        #: Subprocess calls made to get or refresh tokens (for tests and benchmarks).
        self.calls = 0

    def _key(self, profile: Optional[str]) -> tuple:
        return (_selected(profile), os.getcwd())

    def _lock(self, key: tuple) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def peek(self, profile: Optional[str], min_ttl: float) -> Optional[Token]:
        found = self._tokens.get(self._key(profile))
        return found if found is not None and found.valid_for(min_ttl) else None

    def get(self, profile: Optional[str], min_ttl: float, rejected: Optional[str] = None) -> Token:
        key = self._key(profile)
        if rejected is None:
            found = self.peek(profile, min_ttl)
            if found is not None:
                return found
        with self._lock(key):
            current = self._tokens.get(key)
            if rejected is None:
                if current is not None and current.valid_for(min_ttl):
                    return current
                args = ["token", "--json", "--min-ttl", str(int(max(0, min_ttl)))]
            else:
                if current is not None and current.value != rejected:
                    return current  # another thread refreshed it meanwhile
                args = ["token", "--json", "--force-refresh"]
            self.calls += 1
            fresh = _parse(run_binary([*_profile_args(profile), *args]))
            self._tokens[key] = fresh
            return fresh

    def clear(self) -> None:
        with self._guard:
            self._tokens.clear()
            self._locks.clear()


_cache = _Cache()
_profile_info_cache: dict[tuple, dict] = {}


def _profile_info(profile: Optional[str]) -> dict:
    """The profile's settings (`profile show --json`): reads configuration only, never the token cache."""
    name = _selected(profile)
    key = (name, os.getcwd())
    if name is None:
        return {}
    if key not in _profile_info_cache:
        try:
            _profile_info_cache[key] = json.loads(run_binary(["profile", "show", name, "--json"]))
        except (Error, ValueError):
            _profile_info_cache[key] = {}
    return _profile_info_cache[key]


def _api_key_token(profile: Optional[str]) -> Optional[Token]:
    """`AGE_OAUTH_API_KEY` (non-empty) is the credential: no token is asked of the binary."""
    key = os.environ.get("AGE_OAUTH_API_KEY", "")
    if not key:
        return None
    info = _profile_info(profile)
    provider = info.get("provider") if isinstance(info.get("provider"), str) else None
    fields = info.get("fields") if isinstance(info.get("fields"), dict) else {}

    def setting(name: str):
        entry = fields.get(name)
        return entry.get("value") if isinstance(entry, dict) else None

    portal = setting("portal")
    esri = bool(provider) and (provider.startswith("esri") or provider == "web-tier")
    verify = setting("verify_ssl")
    return Token(
        value=key,
        expires_at=None,
        username=None,
        header_name=ESRI_HEADER if esri else "Authorization",
        profile=_selected(profile),
        provider=provider,
        service_url=portal if isinstance(portal, str) else None,
        referer=setting("referer") if isinstance(setting("referer"), str) else None,
        verify=True if verify is None else verify,
        source="AGE_OAUTH_API_KEY",
    )


def token_info(profile: Optional[str] = None, *, min_ttl: Optional[float] = None) -> Token:
    """A `Token` valid for at least `min_ttl` seconds (default 60), from the process cache or the binary."""
    from_env = _api_key_token(profile)
    if from_env is not None:
        return from_env
    return _cache.get(profile, DEFAULT_MIN_TTL if min_ttl is None else min_ttl)


def token(profile: Optional[str] = None, *, min_ttl: Optional[float] = None) -> str:
    """The access token of `profile` (default: AGE_OAUTH_PROFILE, then the configured default)."""
    return token_info(profile, min_ttl=min_ttl).value


def refresh_rejected(profile: Optional[str], rejected: Token) -> Optional[Token]:
    """After a server rejected `rejected`: a token other than it, refreshing once for all threads.
    `None` when the credential cannot be refreshed (an API key from the environment)."""
    if not rejected.refreshable:
        return None
    return _cache.get(profile, DEFAULT_MIN_TTL, rejected=rejected.value)


def origin(url: str) -> tuple:
    """(scheme, host, port) of a URL, default ports filled in."""
    # Only "scheme://authority" matters; caching on it keeps a request loop from re-parsing URLs.
    return _origin_of(url.split("/", 3)[:3] and "/".join(url.split("/", 3)[:3]))


@functools.lru_cache(maxsize=512)
def _origin_of(head: str) -> tuple:
    try:
        parts = urlsplit(head)
        scheme = parts.scheme.lower()
        port = parts.port or {"http": 80, "https": 443}.get(scheme)
    except ValueError:
        return ("", head, None)
    return (scheme, (parts.hostname or "").lower(), port)


def may_send_to(tok: Token, url: str) -> bool:
    """A credential goes only where it came from: the profile's service origin (any, when it has none)."""
    return tok._service_origin is None or tok._service_origin == origin(url)


def refuse_other_host(tok: Token, url: str) -> ConfigError:
    scheme, host, port = origin(url)
    return ConfigError(
        f"refusing to send the credentials of profile '{tok.profile}' to {scheme}://{host}:{port} "
        f"(its service is {tok.service_url}); pass allow_other_hosts=True if that is intended"
    )


def looks_rejected(status: int, content_type: str, body: Optional[bytes]) -> bool:
    """HTTP 401 / 498 / 499, or an ArcGIS error 498 / 499 in a (small, JSON) HTTP 200 body.
    403 is "valid but not allowed": never a reason to refresh."""
    if status in (401, 498, 499):
        return True
    if status != 200 or body is None or len(body) > MAX_SNIFF_BYTES:
        return False
    ctype = (content_type or "").lower()
    if "json" not in ctype and "text/plain" not in ctype:
        return False
    if not body.lstrip()[:1] == b"{" or b"error" not in body:
        return False
    try:
        data = json.loads(body)
    except ValueError:
        return False
    error = data.get("error") if isinstance(data, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    return code in (498, 499, "498", "499")


#: Larger bodies are never inspected for an ArcGIS error (downloads are not buffered for it).
MAX_SNIFF_BYTES = 64 * 1024


def requests_response_rejected(response, stream: bool) -> bool:
    """`looks_rejected` for a `requests.Response`; a streamed body is read only when it is small."""
    if response.status_code in (401, 498, 499):
        return True
    if response.status_code != 200:
        return False
    if stream:
        length = response.headers.get("Content-Length", "")
        if not length.isdigit() or int(length) > MAX_SNIFF_BYTES:
            return False
    return looks_rejected(200, response.headers.get("Content-Type", ""), response.content)


def login(
    profile: Optional[str] = None,
    *,
    force: bool = False,
    no_browser: bool = False,
    output: Callable[[str], None] = None,
    input: Callable[[str], str] = None,
) -> Token:
    """Signs in (`age-oauth login`), relaying the executable's instructions (URL, code, device code)
    to `output` (default: print, i.e. the notebook's output) and answering its prompts with `input`
    (default: the built-in `input`, which notebooks support). Returns the fresh token."""
    import builtins

    output = output or (lambda text: print(text, end="", flush=True))
    ask = input or builtins.input
    args = [*_profile_args(profile), "login", *(["--force"] if force else []), *(["--no-browser"] if no_browser else [])]
    path = find_age_oauth_bin()
    proc = subprocess.Popen(
        [path, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0
    )
    stderr_text = _relay_until_exit(proc, output, ask)
    if proc.returncode != 0:
        raise from_exit(proc.returncode, stderr_text)
    with _cache._guard:
        _cache._tokens.pop(_cache._key(profile), None)
    return token_info(profile)


def _relay_until_exit(proc: subprocess.Popen, output: Callable[[str], None], ask: Callable[[str], str]) -> str:
    """Passes the child's stderr on as it comes; a line left open (a prompt) that stays quiet for a
    moment is answered with `ask`. Returns everything the child wrote to stderr."""
    import selectors

    seen: list[str] = []
    pending = ""
    sel = selectors.DefaultSelector()
    sel.register(proc.stderr, selectors.EVENT_READ)
    open_streams = 1
    while open_streams:
        ready = sel.select(timeout=0.3)
        if not ready:
            if pending and proc.poll() is None:
                # A prompt without a newline: the child waits for an answer.
                answer = ask(pending)
                seen.append(pending)
                pending = ""
                try:
                    proc.stdin.write((answer.strip() + "\n").encode())
                    proc.stdin.flush()
                except OSError:
                    pass
            continue
        chunk = os.read(proc.stderr.fileno(), 65536)
        if not chunk:
            sel.unregister(proc.stderr)
            open_streams -= 1
            continue
        pending += chunk.decode(errors="replace")
        *lines, pending = pending.split("\n")
        for line in lines:
            seen.append(line + "\n")
            output(line + "\n")
    if pending:
        seen.append(pending)
        output(pending)
    proc.wait()
    try:
        proc.stdin.close()
    except OSError:
        pass
    out = proc.stdout.read() if proc.stdout else b""
    if out:
        output(out.decode(errors="replace"))
    return "".join(seen)
