"""`arcgis` integration (extra `age-oauth[arcgis]`): `get_gis()` builds a `GIS` whose auth object
subclasses `arcgis.auth.EsriUserTokenAuth` (so `gis._con.token` works for the many features that read
it), asks for a fresh token near expiry, refreshes once and re-sends once when the portal rejects the
token, and never falls back to anonymous requests."""

from __future__ import annotations

import functools
import threading
from typing import Optional

import requests
from arcgis.auth import EsriUserTokenAuth

from . import _core
from ._errors import ConfigError, Error, LoginRequired

_RETRIED = "_age_oauth_retried"
_USED = "_age_oauth_token"


class ArcGISTokenAuth(EsriUserTokenAuth):
    """The token of an age-oauth profile, for `GIS(url, custom_auth=...)`. Requests to other origins
    than the profile's portal carry nothing of ours."""

    def __init__(self, profile: Optional[str] = None, *, referer: Optional[str] = None, verify_cert: bool = True):
        # EsriUserTokenAuth.__init__ would store a fixed token; ours is a property, asked each time.
        self.profile = profile
        self.referer = referer or ""
        self.verify_cert = verify_cert
        self.legacy = False
        self._invalid_token_urls = set()
        self._failure = threading.local()

    def __repr__(self) -> str:
        return f"<ArcGISTokenAuth profile={self.profile!r}, token=.....>"

    __str__ = __repr__

    @property
    def token(self) -> str:  # read by arcgis as `gis._con.token`
        return self._token_info().value

    @token.setter
    def token(self, value) -> None:
        pass  # the token comes from age-oauth only

    @property
    def failure(self) -> Optional[Error]:
        """The age-oauth error raised inside a request on this thread (arcgis wraps it in a bare Exception)."""
        return getattr(self._failure, "error", None)

    def clear_failure(self) -> None:
        self._failure.error = None

    def _remember(self, error: Error) -> Error:
        self._failure.error = error
        return error

    def _token_info(self) -> _core.Token:
        try:
            return _core.token_info(self.profile)
        except Error as e:
            raise self._remember(e)

    def handle_40x(self, r, **kwargs):
        return r  # arcgis' own handler would re-send without the token: never

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        tok = self._token_info()
        if not _core.may_send_to(tok, r.url):
            return r
        r.headers.update(tok.header)
        if self.referer:
            r.headers["referer"] = self.referer
        setattr(r, _USED, tok)
        r.register_hook("response", self._on_response)
        return r

    def _on_response(self, response: requests.Response, **kwargs) -> requests.Response:
        request = response.request
        tok: Optional[_core.Token] = getattr(request, _USED, None)
        if tok is None:
            return response
        if response.is_redirect and not _core.may_send_to(tok, response.headers.get("Location", "")):
            request.headers.pop(tok.header_name, None)
        if getattr(request, _RETRIED, False):
            return response
        # arcgis sessions stream every response: only small bodies are read to look for error 498/499.
        if not _core.requests_response_rejected(response, kwargs.get("stream", False)):
            return response
        try:
            fresh = _core.refresh_rejected(self.profile, tok)
        except Error as e:
            raise self._remember(e)
        if fresh is None:
            where = _without_query(response.url)
            raise self._remember(LoginRequired(f"the portal rejected the key in AGE_OAUTH_API_KEY ({where})"))
        response.content
        response.close()
        retry = request.copy()
        retry.headers.update(fresh.header)
        setattr(retry, _USED, fresh)
        setattr(retry, _RETRIED, True)
        if retry.body is not None and hasattr(retry.body, "seek"):
            retry.body.seek(0)
        again = response.connection.send(retry, **kwargs)
        again.history.append(response)
        again.request = retry
        return again


def _without_query(url: str) -> str:
    """`url` without its query and fragment: arcgis may put `token=` there, and messages must not carry it."""
    return url.split("?", 1)[0].split("#", 1)[0]


def _reraise_ours(auth: ArcGISTokenAuth, call):
    """Runs `call`; an age-oauth error raised inside it comes out as itself, not as arcgis' wrapper."""
    auth.clear_failure()
    try:
        result = call()
    except Exception as e:
        failure = auth.failure
        if failure is not None and failure is not e:
            raise failure from e
        raise
    if auth.failure is not None:
        raise auth.failure
    return result


def _guard_connection(con, auth: ArcGISTokenAuth) -> None:
    for name in ("get", "post", "put", "delete", "post_multipart", "streaming_method"):
        method = getattr(con, name, None)
        if method is None:
            continue

        def guarded(*args, _method=method, **kwargs):
            return _reraise_ours(auth, lambda: _method(*args, **kwargs))

        setattr(con, name, functools.wraps(method)(guarded))


def get_gis(profile: Optional[str] = None, *, connection: Optional[str] = None, **gis_kwargs):
    """An `arcgis.gis.GIS` signed in with `profile` (`connection=` is the old Python age-oauth's name
    for it), at the profile's portal URL with its referer and TLS settings; other keyword arguments go
    to `GIS`. Raises `LoginRequired` when the login is dead, never returns an anonymous GIS."""
    from arcgis.gis import GIS

    legacy_id = gis_kwargs.pop("connection_id", None)
    prompt_if_missing = gis_kwargs.pop("prompt_if_missing", False)
    names = {n for n in (profile, connection, legacy_id) if n}
    if len(names) > 1:
        raise ConfigError(f"get_gis: profile, connection and connection_id name different profiles: {sorted(names)}")
    name = names.pop() if names else None
    try:
        tok = _core.token_info(name)
    except LoginRequired:
        if not prompt_if_missing:
            raise
        tok = _core.login(name)
    url = gis_kwargs.pop("url", None) or tok.service_url
    if not url:
        raise ConfigError(f"profile '{tok.profile}' has no portal URL: pass url=")
    if not _core.may_send_to(tok, url):
        # The auth object sends the token only to the profile's portal: a GIS elsewhere would be anonymous.
        raise ConfigError(
            f"get_gis: url {_without_query(url)} is not at the portal of profile '{tok.profile}' "
            f"({tok.service_url}), and its token goes only there: leave url= out, or use a profile for that portal"
        )
    verify = tok.verify
    if isinstance(verify, str):
        gis_kwargs.setdefault("ca_bundles", verify)
        verify = True
    gis_kwargs.setdefault("verify_cert", bool(verify))
    referer = gis_kwargs.setdefault("referer", tok.referer) if tok.referer else gis_kwargs.get("referer")
    auth = ArcGISTokenAuth(name, referer=referer, verify_cert=gis_kwargs["verify_cert"])
    gis = _reraise_ours(auth, lambda: GIS(url, custom_auth=auth, **gis_kwargs))
    if gis._con._auth != "CUSTOM" or not gis._con.token:
        raise Error(f"arcgis did not take the age-oauth credentials for {url} (auth mode {gis._con._auth!r})")
    _guard_connection(gis._con, auth)
    return gis
