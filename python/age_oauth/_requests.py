"""`requests` integration (extra `age-oauth[requests]`): an auth object that adds the profile's token,
refreshes it once when the server rejects it (401 / 498 / 499, also ArcGIS errors in HTTP 200 bodies)
and re-sends once; and a Session using it."""

from __future__ import annotations

from typing import Optional

import requests
import requests.auth

from . import _core
from ._version import __version__

_RETRIED = "_age_oauth_retried"
_USED = "_age_oauth_token"


class AgeOAuthAuth(requests.auth.AuthBase):
    """`requests` auth for an age-oauth profile. Sends the token (and the profile's `referer`, unless the
    request has one) only to the profile's service origin (`ConfigError` otherwise, unless
    `allow_other_hosts=True`); 403 is never retried."""

    def __init__(self, profile: Optional[str] = None, *, allow_other_hosts: bool = False):
        self.profile = profile
        self.allow_other_hosts = allow_other_hosts

    def __repr__(self) -> str:
        return f"<AgeOAuthAuth profile={self.profile!r}>"

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        tok = _core.token_info(self.profile)
        if not self.allow_other_hosts and not _core.may_send_to(tok, r.url):
            raise _core.refuse_other_host(tok, r.url)
        self._apply(r, tok)
        r.register_hook("response", self._on_response)
        return r

    @staticmethod
    def _apply(r: requests.PreparedRequest, tok: _core.Token) -> None:
        r.headers.update(tok.header)
        if tok.referer and "Referer" not in r.headers:
            r.headers["Referer"] = tok.referer  # portals bind `client=referer` tokens to it; a caller's own wins
        setattr(r, _USED, tok)

    def _on_response(self, response: requests.Response, **kwargs) -> requests.Response:
        request = response.request
        tok: Optional[_core.Token] = getattr(request, _USED, None)
        if tok is None:
            return response
        if response.is_redirect and not _core.may_send_to(tok, response.headers.get("Location", "")):
            # requests copies this request for the redirect: the credential must not follow it elsewhere.
            request.headers.pop(tok.header_name, None)
        if getattr(request, _RETRIED, False) or not self._rejected(response, kwargs.get("stream", False)):
            return response
        fresh = _core.refresh_rejected(self.profile, tok)
        if fresh is None:
            return response  # an API key cannot be refreshed: the caller sees the answer as it is
        response.content  # drain, so the connection can be reused
        response.close()
        retry = request.copy()
        self._apply(retry, fresh)
        setattr(retry, _RETRIED, True)
        if retry.body is not None and hasattr(retry.body, "seek"):
            retry.body.seek(0)
        again = response.connection.send(retry, **kwargs)
        again.history.append(response)
        again.request = retry
        return again

    @staticmethod
    def _rejected(response: requests.Response, stream: bool) -> bool:
        return _core.requests_response_rejected(response, stream)


def requests_auth(profile: Optional[str] = None, *, allow_other_hosts: bool = False) -> AgeOAuthAuth:
    """A `requests.auth.AuthBase` for `profile`: `requests.get(url, auth=age_oauth.requests_auth("prod"))`."""
    return AgeOAuthAuth(profile, allow_other_hosts=allow_other_hosts)


class Session(requests.Session):
    """A `requests.Session` with the profile's auth, TLS setting (`verify_ssl`) and, when given,
    `base_url` that relative URLs are joined to (default: the profile's service URL)."""

    def __init__(self, profile: Optional[str] = None, base_url: Optional[str] = None):
        super().__init__()
        self.auth = AgeOAuthAuth(profile)
        tok = _core.token_info(profile)
        self.verify = tok.verify
        self.base_url = (base_url or tok.service_url or "").rstrip("/") or None
        self.headers["User-Agent"] = f"age-oauth/{__version__} {self.headers.get('User-Agent', '')}".strip()
        if tok.referer:
            self.headers.setdefault("Referer", tok.referer)

    def merge_environment_settings(self, url, proxies, stream, verify, cert):
        settings = super().merge_environment_settings(url, proxies, stream, verify, cert)
        # requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override a session's CA: the profile's wins.
        if verify is None and self.verify is not True:
            settings["verify"] = self.verify
        return settings

    def request(self, method, url, *args, **kwargs):
        if self.base_url and "://" not in url:
            url = f"{self.base_url}/{url.lstrip('/')}"
        return super().request(method, url, *args, **kwargs)
