"""age_oauth.httpx_auth() with the real `httpx`, sync and async, against the HTTPS Portal simulator."""

from __future__ import annotations

import asyncio
import ssl

import httpx
import pytest

import age_oauth
from age_oauth import _core

ME = "sharing/rest/community/self?f=json"


def client(sandbox, prod) -> httpx.Client:
    return httpx.Client(auth=age_oauth.httpx_auth(prod), verify=ssl.create_default_context(cafile=sandbox.ca),
                        base_url=sandbox.portal)


@pytest.mark.parametrize("status", [200, 401, 498], ids=["498-in-200-body", "http-401", "http-498"])
def test_sync_refreshes_once_after_server_side_expiry(prod, sandbox, status):
    with client(sandbox, prod) as c:
        assert c.get(ME).json()["username"] == "demo"
        sandbox.configure(invalid_token_status=status)
        sandbox.advance(1801)
        sandbox.reset()
        answer = c.get(ME)
        assert answer.json()["username"] == "demo"
        assert [r.status_code for r in answer.history] == [status]
    assert sandbox.count("token:refresh_token") == 1
    assert [e["auth"] for e in sandbox.requests_log() if "community" in e["path"]] == ["invalid", "valid"]


def test_sync_does_not_loop_on_401_and_never_retries_403(prod, sandbox):
    root = sandbox.root
    with client(sandbox, prod) as c:
        assert c.get(f"{root}/__test/status/401").status_code == 401
        assert sandbox.count("test/status:401") == 2 and sandbox.count("token:refresh_token") == 1
        assert c.get(f"{root}/__test/status/403").status_code == 403
        assert sandbox.count("test/status:403") == 1 and sandbox.count("token:refresh_token") == 1


@pytest.mark.parametrize("status", [498, 499])
def test_sync_a_498_or_499_that_stays_is_retried_once(prod, sandbox, status):
    with client(sandbox, prod) as c:
        assert c.get(f"{sandbox.root}/__test/status/{status}").status_code == status
    assert sandbox.count(f"test/status:{status}") == 2 and sandbox.count("token:refresh_token") == 1


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_an_arcgis_499_in_a_200_body_refreshes_once_and_resends(prod, sandbox, error_body_499, mode):
    auth = age_oauth.httpx_auth(prod, allow_other_hosts=True)

    async def run_async():
        async with httpx.AsyncClient(auth=auth) as c:
            return await c.get(error_body_499.url)

    if mode == "async":
        answer = asyncio.run(run_async())
    else:
        with httpx.Client(auth=auth) as c:
            answer = c.get(error_body_499.url)
    assert answer.json() == {"ok": True} and len(answer.history) == 1
    first, second = (h["X-Esri-Authorization"] for h in error_body_499.seen)
    assert first != second, "the re-sent request carries the refreshed token"
    assert sandbox.count("token:refresh_token") == 1


def test_sync_refuses_other_hosts(prod):
    with httpx.Client(auth=age_oauth.httpx_auth(prod)) as c:
        with pytest.raises(age_oauth.ConfigError, match="refusing"):
            c.get("https://127.0.0.1:1/x")


def test_async_many_requests_across_an_expiry_refresh_once(prod, sandbox):
    async def main():
        verify = ssl.create_default_context(cafile=sandbox.ca)
        async with httpx.AsyncClient(auth=age_oauth.httpx_auth(prod), verify=verify, base_url=sandbox.portal) as c:
            first = await asyncio.gather(*(c.get(ME) for _ in range(10)))
            sandbox.advance(1801)
            second = await asyncio.gather(*(c.get(ME) for _ in range(10)))
            return [r.json().get("username") for r in first + second]

    assert asyncio.run(main()) == ["demo"] * 20
    assert sandbox.count("token:refresh_token") == 1
    assert _core._cache.calls == 2


def test_async_revoked_login_raises_login_required(prod, sandbox):
    async def main():
        verify = ssl.create_default_context(cafile=sandbox.ca)
        async with httpx.AsyncClient(auth=age_oauth.httpx_auth(prod), verify=verify, base_url=sandbox.portal) as c:
            await c.get(ME)
            sandbox.revoke_all()
            sandbox.advance(1801)
            await c.get(ME)

    with pytest.raises(age_oauth.LoginRequired):
        asyncio.run(main())


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_token_near_expiry_is_refreshed_before_it_is_sent(home, prod, sandbox, mode):
    sandbox.configure(access_token_lifetime=30)  # under the refresh margin: every token is "near expiry"
    home.ok("token", "--profile", prod, "--force-refresh")
    sandbox.reset()

    async def run_async():
        verify = ssl.create_default_context(cafile=sandbox.ca)
        async with httpx.AsyncClient(auth=age_oauth.httpx_auth(prod), verify=verify, base_url=sandbox.portal) as c:
            first = await c.get(ME)
            sandbox.advance(31)  # dead at the portal; here it has under a minute left
            return first, await c.get(ME)

    if mode == "async":
        first, second = asyncio.run(run_async())
    else:
        with client(sandbox, prod) as c:
            first = c.get(ME)
            sandbox.advance(31)
            second = c.get(ME)
    assert [first.json()["username"], second.json()["username"]] == ["demo", "demo"]
    assert not second.history, "no request was rejected first"
    assert [e["auth"] for e in sandbox.requests_log() if "community" in e["path"]] == ["valid", "valid"]
    assert sandbox.count("token:refresh_token") == 2


def test_the_profiles_referer_goes_with_every_request(referer_profile, sandbox):
    from conftest import REFERER

    with client(sandbox, referer_profile) as c:
        answer = c.get(ME)
    assert answer.json()["username"] == "demo" and answer.request.headers["Referer"] == REFERER


def test_async_does_not_loop_on_401_and_never_retries_403(prod, sandbox):
    async def main():
        verify = ssl.create_default_context(cafile=sandbox.ca)
        async with httpx.AsyncClient(auth=age_oauth.httpx_auth(prod), verify=verify) as c:
            stays = await c.get(f"{sandbox.root}/__test/status/401")
            assert sandbox.count("test/status:401") == 2 and sandbox.count("token:refresh_token") == 1
            forbidden = await c.get(f"{sandbox.root}/__test/status/403")
            return stays.status_code, forbidden.status_code

    assert asyncio.run(main()) == (401, 403)
    assert sandbox.count("test/status:401") == 2, "sent, refreshed once, re-sent once: no loop"
    assert sandbox.count("test/status:403") == 1 and sandbox.count("token:refresh_token") == 1, "403 never retried"
