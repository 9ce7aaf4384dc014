"""`httpx` integration (extra `age-oauth[httpx]`): `httpx.Auth` with the same rules as the requests
one, for sync and async clients. The async flow runs the executable in a worker thread, so the
process-wide single-flight cache is shared with sync code and other event loops."""

from __future__ import annotations

import asyncio
from typing import Optional

import httpx

from . import _core


class AgeOAuthHttpxAuth(httpx.Auth):
    # Bodies are read by the flow only when small and JSON (never for streamed downloads).
    requires_response_body = False

    def __init__(self, profile: Optional[str] = None, *, allow_other_hosts: bool = False):
        self.profile = profile
        self.allow_other_hosts = allow_other_hosts

    def __repr__(self) -> str:
        return f"<AgeOAuthHttpxAuth profile={self.profile!r}>"

    def _prepare(self, request: httpx.Request, tok: _core.Token) -> None:
        if not self.allow_other_hosts and not _core.may_send_to(tok, str(request.url)):
            raise _core.refuse_other_host(tok, str(request.url))
        request.headers.update(tok.header)
        if tok.referer and "referer" not in request.headers:
            request.headers["Referer"] = tok.referer  # portals bind `client=referer` tokens to it; a caller's own wins

    @staticmethod
    def _needs_body(response: httpx.Response) -> bool:
        length = response.headers.get("Content-Length")
        return (
            response.status_code == 200
            and length is not None
            and length.isdigit()
            and int(length) <= _core.MAX_SNIFF_BYTES
        )

    @staticmethod
    def _rejected(response: httpx.Response, body: Optional[bytes]) -> bool:
        return _core.looks_rejected(response.status_code, response.headers.get("Content-Type", ""), body)

    def sync_auth_flow(self, request: httpx.Request):
        tok = _core.token_info(self.profile)
        self._prepare(request, tok)
        response = yield request
        body = response.read() if self._needs_body(response) else None
        if not self._rejected(response, body):
            return
        fresh = _core.refresh_rejected(self.profile, tok)
        if fresh is None:
            return
        request.headers.update(fresh.header)
        yield request

    async def async_auth_flow(self, request: httpx.Request):
        tok = _core._cache.peek(self.profile, _core.DEFAULT_MIN_TTL) if not _api_key_set() else None
        if tok is None:
            tok = await asyncio.to_thread(_core.token_info, self.profile)
        self._prepare(request, tok)
        response = yield request
        body = await response.aread() if self._needs_body(response) else None
        if not self._rejected(response, body):
            return
        fresh = await asyncio.to_thread(_core.refresh_rejected, self.profile, tok)
        if fresh is None:
            return
        request.headers.update(fresh.header)
        yield request


def _api_key_set() -> bool:
    import os

    return bool(os.environ.get("AGE_OAUTH_API_KEY"))


def httpx_auth(profile: Optional[str] = None, *, allow_other_hosts: bool = False) -> AgeOAuthHttpxAuth:
    """An `httpx.Auth` for `profile`, for `httpx.Client(auth=...)` and `httpx.AsyncClient(auth=...)`."""
    return AgeOAuthHttpxAuth(profile, allow_other_hosts=allow_other_hosts)
