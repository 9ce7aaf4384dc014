"""age_oauth.get_gis() with the real `arcgis` 2.4.x against the HTTPS Portal simulator: the user, a
server-side expiry survived with no anonymous request, connection=, a dead login as LoginRequired."""

from __future__ import annotations

import os

import pytest

# tests/setup/python.sh installs arcgis, so a missing one is a failure (run-all and CI count skips as
# ignored); a developer's bare `pytest` may opt out with AGE_OAUTH_ALLOW_MISSING_ARCGIS=1, never under CI.
if os.environ.get("AGE_OAUTH_ALLOW_MISSING_ARCGIS") == "1" and os.environ.get("CI", "").lower() != "true":
    arcgis = pytest.importorskip("arcgis")
else:
    import arcgis

import age_oauth  # noqa: E402
from age_oauth import _core  # noqa: E402
from age_oauth._arcgis import ArcGISTokenAuth  # noqa: E402


def resource_log(sandbox):
    """What the GIS asked of the portal (not the binary's token endpoint)."""
    return [e for e in sandbox.requests_log() if "/oauth2/" not in e["path"]]


def test_get_gis_signs_in_as_the_profiles_user(prod, sandbox):
    gis = age_oauth.get_gis(prod)
    assert gis.users.me.username == "demo"
    assert isinstance(gis._con._session.auth, arcgis.auth.EsriUserTokenAuth)
    assert gis._con._auth == "CUSTOM" and gis._con.token == age_oauth.token(prod)
    assert gis.url.startswith(sandbox.portal)
    assert resource_log(sandbox) and all(e["auth"] == "valid" for e in resource_log(sandbox))


@pytest.mark.parametrize("status", [200, 401, 498], ids=["498-in-200-body", "http-401", "http-498"])
def test_the_same_gis_survives_a_server_side_expiry_without_going_anonymous(prod, sandbox, status):
    gis = age_oauth.get_gis(prod)
    before = gis._con.token
    sandbox.configure(invalid_token_status=status)
    sandbox.advance(1801)  # the portal forgets the token; the cache here still thinks it valid
    sandbox.reset()
    assert gis.users.get("demo").username == "demo"  # users.get asks the portal (users.me is cached)
    assert gis._con.token != before
    assert sandbox.count("token:refresh_token") == 1
    log = [e["auth"] for e in resource_log(sandbox)]
    assert log[0] == "invalid" and log[1:] and set(log[1:]) == {"valid"}, "no anonymous request in between"


def test_a_token_near_expiry_is_refreshed_before_the_gis_sends_it(home, prod, sandbox):
    sandbox.configure(access_token_lifetime=30)  # under the refresh margin: every token is "near expiry"
    home.ok("token", "--profile", prod, "--force-refresh")
    gis = age_oauth.get_gis(prod)
    sandbox.advance(31)  # the GIS's last token is dead at the portal; here it has under a minute left
    sandbox.reset()
    assert gis.users.get("demo").username == "demo"
    assert sandbox.count("token:refresh_token") >= 1
    log = [e["auth"] for e in resource_log(sandbox)]
    assert log and set(log) == {"valid"}, f"refreshed before sending, nothing rejected first: {log}"


def test_connection_is_the_old_name_of_profile(prod, sandbox, monkeypatch):
    assert age_oauth.get_gis(connection=prod).users.me.username == "demo"
    with pytest.raises(age_oauth.ConfigError):
        age_oauth.get_gis("prod", connection="other")
    monkeypatch.setenv("AGE_OAUTH_PROFILE", prod)
    assert age_oauth.get_gis().users.me.username == "demo"


def test_a_revoked_login_raises_login_required_and_never_goes_anonymous(prod, sandbox):
    gis = age_oauth.get_gis(prod)
    sandbox.revoke_all()
    sandbox.advance(1801)
    sandbox.reset()
    with pytest.raises(age_oauth.LoginRequired, match="login"):
        gis.users.get("demo")
    assert all(e["auth"] != "none" for e in resource_log(sandbox)), resource_log(sandbox)
    _core._cache.clear()
    with pytest.raises(age_oauth.LoginRequired):
        age_oauth.get_gis(prod)


def test_auth_object_never_sends_the_token_elsewhere(prod, sandbox):
    import requests

    auth = ArcGISTokenAuth(prod)
    elsewhere = requests.Request("GET", "https://other.invalid/x").prepare()
    assert "X-Esri-Authorization" not in auth(elsewhere).headers
    ours = auth(requests.Request("GET", f"{sandbox.portal}/sharing/rest/portals/self").prepare())
    assert ours.headers["X-Esri-Authorization"] == f"Bearer {age_oauth.token(prod)}"
    assert age_oauth.token(prod) not in repr(auth)


def test_api_key_from_the_environment_drives_get_gis_and_a_rejected_key_raises(prod, sandbox, monkeypatch):
    key = age_oauth.token(prod)
    _core._cache.clear()
    _core._cache.calls = 0
    monkeypatch.setenv("AGE_OAUTH_API_KEY", key)
    gis = age_oauth.get_gis(prod)
    assert gis.users.me.username == "demo" and gis._con.token == key
    assert _core._cache.calls == 0, "no token was asked of the binary"
    sandbox.advance(1801)
    sandbox.reset()
    with pytest.raises(age_oauth.LoginRequired, match="AGE_OAUTH_API_KEY"):
        gis.users.get("demo")
    assert all(e["auth"] != "none" for e in resource_log(sandbox))


def test_a_url_at_another_origin_is_refused_not_served_anonymously(prod, sandbox):
    """The token goes only to the profile's portal: a GIS at any other origin (the same sandbox by
    another name, a federated server elsewhere) would run anonymously, so get_gis refuses it."""
    port = sandbox.portal.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)[1]
    same_server_other_name = f"https://localhost:{port}/portal"
    for url in (same_server_other_name, f"https://127.0.0.1:1/arcgis?token=abc"):
        with pytest.raises(age_oauth.ConfigError) as refused:
            age_oauth.get_gis(prod, url=url)
        message = str(refused.value)
        assert sandbox.portal in message and "prod" in message and "token=abc" not in message
    assert resource_log(sandbox) == [], "no GIS was built, so nothing went out anonymously"
    gis = age_oauth.get_gis(prod, url=sandbox.portal)  # the profile's own portal, named explicitly
    assert gis.users.me.username == "demo"
    assert all(e["auth"] == "valid" for e in resource_log(sandbox))


def test_a_rejected_api_key_message_carries_no_query(prod, sandbox, monkeypatch):
    import requests

    monkeypatch.setenv("AGE_OAUTH_API_KEY", age_oauth.token(prod))
    sandbox.advance(1801)
    url = f"{sandbox.portal}/sharing/rest/community/self?f=json&token=SECRET-IN-QUERY"
    with pytest.raises(age_oauth.LoginRequired) as rejected:
        requests.get(url, auth=ArcGISTokenAuth(prod), verify=sandbox.ca)
    assert "SECRET-IN-QUERY" not in str(rejected.value) and "community/self" in str(rejected.value)


def test_the_profiles_referer_goes_with_every_request(referer_profile, sandbox):
    """The sandbox accepts the profile's `client=referer` token only with that Referer."""
    from conftest import REFERER

    gis = age_oauth.get_gis(referer_profile)
    assert gis.users.me.username == "demo" and gis.users.get("demo").username == "demo"
    assert gis._con._session.auth.referer == REFERER
