"""age_oauth.requests_auth() / age_oauth.Session() with the real `requests` against the HTTPS Portal
simulator: refresh once on 401 / 498 (also in an HTTP 200 body), never loop, never retry 403, one
refresh for many threads, no credential to other hosts."""

from __future__ import annotations

import threading

import pytest
import requests

import age_oauth
from age_oauth import _core

ME = "sharing/rest/community/self?f=json"


def get(sandbox, prod, path=ME, **kwargs):
    return requests.get(f"{sandbox.portal}/{path}", auth=age_oauth.requests_auth(prod), verify=sandbox.ca, **kwargs)


def test_requests_auth_sends_the_token_and_calls_the_binary_once(prod, sandbox):
    for _ in range(20):
        assert get(sandbox, prod).json()["username"] == "demo"
    assert _core._cache.calls == 1
    assert {e["auth"] for e in sandbox.requests_log()} == {"valid"}


@pytest.mark.parametrize("status", [200, 401, 498], ids=["498-in-200-body", "http-401", "http-498"])
def test_expired_server_side_refreshes_once_and_resends_once(prod, sandbox, status):
    assert get(sandbox, prod).json()["username"] == "demo"
    sandbox.configure(invalid_token_status=status)
    sandbox.advance(1801)  # the portal's clock: the token is dead there, still "valid" here
    sandbox.reset()
    answer = get(sandbox, prod)
    assert answer.status_code == 200 and answer.json()["username"] == "demo"
    assert [r.status_code for r in answer.history] == [status]
    assert sandbox.count("token:refresh_token") == 1
    assert [e["auth"] for e in sandbox.requests_log() if "community" in e["path"]] == ["invalid", "valid"]


def short_lived_tokens(home, sandbox, prod, seconds=30):
    """From now on the portal issues tokens valid for `seconds` (less than the refresh margin), and the
    cached one is such a token."""
    sandbox.configure(access_token_lifetime=seconds)
    home.ok("token", "--profile", prod, "--force-refresh")
    sandbox.reset()


def test_a_token_near_expiry_is_refreshed_before_it_is_sent(home, prod, sandbox):
    short_lived_tokens(home, sandbox, prod)
    session = requests.Session()
    session.auth = age_oauth.requests_auth(prod)
    session.verify = sandbox.ca
    assert session.get(f"{sandbox.portal}/{ME}").json()["username"] == "demo"
    sandbox.advance(31)  # the token sent above is dead at the portal; here it has under a minute left
    answer = session.get(f"{sandbox.portal}/{ME}")
    assert answer.json()["username"] == "demo" and not answer.history, "no request was rejected first"
    assert [e["auth"] for e in sandbox.requests_log() if "community" in e["path"]] == ["valid", "valid"]
    assert sandbox.count("token:refresh_token") == 2, "each token had less than the margin left: refreshed first"


@pytest.mark.parametrize("status", [401, 498, 499])
def test_a_rejection_that_stays_is_returned_after_one_retry(prod, sandbox, status):
    answer = get(sandbox, prod, f"../__test/status/{status}")
    assert answer.status_code == status
    assert sandbox.count(f"test/status:{status}") == 2, "sent, refreshed once, re-sent once: no loop"
    assert sandbox.count("token:refresh_token") == 1


def test_an_arcgis_499_in_a_200_body_refreshes_once_and_resends(prod, sandbox, error_body_499):
    """ArcGIS Server answers "Token Required" (499) in an HTTP 200 body."""
    answer = requests.get(error_body_499.url, auth=age_oauth.requests_auth(prod, allow_other_hosts=True))
    assert answer.json() == {"ok": True} and len(answer.history) == 1
    first, second = (h["X-Esri-Authorization"] for h in error_body_499.seen)
    assert first != second, "the re-sent request carries the refreshed token"
    assert sandbox.count("token:refresh_token") == 1


def test_403_is_never_retried(prod, sandbox):
    answer = get(sandbox, prod, "../__test/status/403")
    assert answer.status_code == 403
    assert sandbox.count("test/status:403") == 1 and sandbox.count("token:refresh_token") == 0


def test_two_threads_fifty_requests_each_across_an_expiry_refresh_once(prod, sandbox):
    session = requests.Session()
    session.auth = age_oauth.requests_auth(prod)
    session.verify = sandbox.ca
    expire = threading.Barrier(2, action=lambda: sandbox.advance(1801))
    results: list = []

    def worker():
        for i in range(50):
            if i == 25:
                expire.wait()  # both threads hold the old token when the portal expires it
            results.append(session.get(f"{sandbox.portal}/{ME}").json().get("username"))

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == ["demo"] * 100
    assert sandbox.count("token:refresh_token") == 1, "one refresh for both threads"
    assert _core._cache.calls == 2, "the first token and the one refresh"
    resource_requests = [e for e in sandbox.requests_log() if "/oauth2/" not in e["path"]]
    assert len(resource_requests) == 102 and all(e["auth"] != "none" for e in resource_requests), "never anonymous"


def test_revoked_login_raises_login_required(prod, sandbox):
    assert get(sandbox, prod).ok
    sandbox.revoke_all()
    sandbox.advance(1801)
    with pytest.raises(age_oauth.LoginRequired, match="login"):
        get(sandbox, prod)


def test_credentials_go_only_to_the_profiles_service(prod, sandbox):
    with pytest.raises(age_oauth.ConfigError, match="refusing to send the credentials"):
        requests.get("https://127.0.0.1:1/elsewhere", auth=age_oauth.requests_auth(prod))
    assert sandbox.requests_log() == []


def test_session_uses_the_profiles_url_and_ca(prod, sandbox):
    s = age_oauth.Session(prod)
    assert isinstance(s, requests.Session) and s.verify == sandbox.ca
    assert s.get(ME).json()["username"] == "demo"
    assert s.headers["User-Agent"].startswith(f"age-oauth/{age_oauth.__version__}")
    other = age_oauth.Session(prod, base_url=f"{sandbox.portal}/sharing/rest")
    assert other.get("portals/self?f=json").json()["user"]["username"] == "demo"


def test_a_redirect_to_another_host_does_not_carry_the_token(prod, sandbox):
    """The portal redirects (here: the authorize endpoint to a loopback redirect URI) to a server of
    another origin: requests follows it, and the token must not go along."""
    import http.server

    seen: list = []

    class Catch(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            seen.append(dict(self.headers))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    catcher = http.server.HTTPServer(("127.0.0.1", 0), Catch)
    threading.Thread(target=catcher.handle_request, daemon=True).start()
    redirect_uri = f"http://127.0.0.1:{catcher.server_port}/callback"
    params = {"client_id": "age-oauth-sandbox", "response_type": "code", "redirect_uri": redirect_uri}
    answer = requests.get(f"{sandbox.portal}/sharing/rest/oauth2/authorize", params=params,
                          auth=age_oauth.requests_auth(prod), verify=sandbox.ca, timeout=10)
    catcher.server_close()
    assert answer.status_code == 200 and answer.history and answer.history[0].is_redirect
    assert len(seen) == 1 and "X-Esri-Authorization" not in seen[0], seen
    assert sandbox.requests_log()[0]["auth"] == "valid", "the portal itself got the token"


def test_the_profiles_referer_goes_with_every_request(referer_profile, sandbox):
    """The sandbox accepts a `client=referer` token only with that Referer (498 otherwise)."""
    from conftest import REFERER

    session = age_oauth.Session(referer_profile)
    assert session.headers["Referer"] == REFERER
    assert session.get(ME).json()["username"] == "demo"
    plain = requests.get(f"{sandbox.portal}/{ME}", auth=age_oauth.requests_auth(referer_profile), verify=sandbox.ca)
    assert plain.json()["username"] == "demo" and plain.request.headers["Referer"] == REFERER
    mine = requests.Request("GET", f"{sandbox.portal}/{ME}", headers={"Referer": "https://mine.example.test"})
    signed = age_oauth.requests_auth(referer_profile)(mine.prepare())
    assert signed.headers["Referer"] == "https://mine.example.test", "a caller's own Referer is kept"


def test_session_is_a_class_to_check_and_subclass(prod, sandbox):
    from age_oauth import Session

    assert Session is age_oauth.Session and issubclass(Session, requests.Session)

    class Client(age_oauth.Session):  # Anaconda's BaseClient pattern: a session subclass with its own defaults
        def me(self):
            return self.get(ME).json()["username"]

    client = Client(prod)
    assert isinstance(client, age_oauth.Session) and isinstance(client, requests.Session)
    assert client.me() == "demo"
