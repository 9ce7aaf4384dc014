"""age-oauth for Python: tokens from the age-oauth executable (its age-encrypted, self-refreshing cache),
for scripts, `requests`, `httpx` and `arcgis`.

    import age_oauth
    gis = age_oauth.get_gis("prod")                          # arcgis.gis.GIS, refreshes by itself
    requests.get(url, auth=age_oauth.requests_auth("prod"))
    httpx.Client(auth=age_oauth.httpx_auth("prod"))
"""

from __future__ import annotations

from ._bin import find_age_oauth_bin
from ._core import Token, login, token, token_info
from ._errors import BinaryNotFound, ConfigError, Error, LoginRequired, ServerError, VersionMismatch
from ._version import __version__

__all__ = [
    "BinaryNotFound",
    "ConfigError",
    "Error",
    "LoginRequired",
    "ServerError",
    "Session",
    "Token",
    "VersionMismatch",
    "__version__",
    "find_age_oauth_bin",
    "get_gis",
    "httpx_auth",
    "login",
    "requests_auth",
    "token",
    "token_info",
]


# The integrations import their third-party package only when used (extras: requests, httpx, arcgis).
def requests_auth(profile=None, *, allow_other_hosts=False):
    """A `requests.auth.AuthBase` adding the profile's token (extra `age-oauth[requests]`)."""
    from ._requests import requests_auth as make

    return make(profile, allow_other_hosts=allow_other_hosts)


def __getattr__(name):
    # `age_oauth.Session` is the class itself (isinstance, subclassing), imported with requests on first use.
    if name == "Session":
        from ._requests import Session

        return Session
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def httpx_auth(profile=None, *, allow_other_hosts=False):
    """An `httpx.Auth` (sync and async) adding the profile's token (extra `age-oauth[httpx]`)."""
    from ._httpx import httpx_auth as make

    return make(profile, allow_other_hosts=allow_other_hosts)


def get_gis(profile=None, *, connection=None, **gis_kwargs):
    """An `arcgis.gis.GIS` signed in with the profile, refreshing by itself (extra `age-oauth[arcgis]`)."""
    from ._arcgis import get_gis as make

    return make(profile, connection=connection, **gis_kwargs)
