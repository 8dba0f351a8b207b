"""OAuth behaviour of the Strava stand-in: authorize, token exchange, refresh, deauthorize."""

from __future__ import annotations

from typing import Any

import pytest
from yarl import URL

from service.core.clock import ManualClock, to_epoch
from standin import StandinConfig, StravaStandin, build_standin_app
from standin.testing import authorize_form, connect_athlete

REDIRECT = "http://localhost:8080/oauth/strava/callback"
AUTHORIZE = {
    "client_id": "1001",
    "redirect_uri": REDIRECT,
    "response_type": "code",
    "approval_prompt": "force",
    "scope": "read,activity:read_all,activity:write",
    "state": "st4te",
}
APP_INVALID = {
    "message": "Authorization Error",
    "errors": [{"resource": "Application", "field": "", "code": "invalid"}],
}
REFRESH_INVALID = {
    "message": "Bad Request",
    "errors": [{"resource": "RefreshToken", "field": "refresh_token", "code": "invalid"}],
}
CODE_INVALID = {
    "message": "Bad Request",
    "errors": [{"resource": "AuthorizationCode", "field": "code", "code": "invalid"}],
}


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def make_client(aiohttp_client: Any, clock: ManualClock, **config: Any) -> Any:
    standin = StravaStandin(StandinConfig(**config), clock)
    return standin, aiohttp_client(build_standin_app(standin))


async def refresh(client: Any, token: str, secret: str = "sandbox-secret") -> Any:
    data = {
        "client_id": "1001",
        "client_secret": secret,
        "grant_type": "refresh_token",
        "refresh_token": token,
    }
    return await client.post("/oauth/token", data=data)


# authorize ---------------------------------------------------------------------------------------


async def test_authorize_page_lists_scopes_athletes_and_escapes(
    aiohttp_client: Any, clock: ManualClock
) -> None:
    standin, pending = make_client(aiohttp_client, clock)
    standin.add_athlete(firstname="<b>Eve</b>", lastname="O'Hara")
    client = await pending
    resp = await client.get("/oauth/authorize", params={**AUTHORIZE, "state": '"><script>x</script>'})
    assert resp.status == 200
    assert resp.content_type == "text/html"
    html = await resp.text()
    assert "Strava sandbox — not the real Strava" in html
    assert 'name="viewport"' in html
    assert 'value="activity:read_all" checked' in html and 'value="activity:write" checked' in html
    assert "<script>x</script>" not in html and "&lt;script&gt;" in html
    assert "<b>Eve</b>" not in html and "&lt;b&gt;Eve&lt;/b&gt;" in html
    assert 'value="new"' in html


@pytest.mark.parametrize(
    ("override", "resource", "field"),
    [
        ({"client_id": "999"}, "Application", "client_id"),
        ({"scope": "view_private"}, "Authorize", "scope"),
        ({"scope": "read,write"}, "Authorize", "scope"),
        ({"redirect_uri": "not a url"}, "Application", "redirect_uri"),
        ({"response_type": "token"}, "Authorize", "response_type"),
    ],
)
async def test_authorize_rejects_bad_requests(
    aiohttp_client: Any, clock: ManualClock, override: dict[str, str], resource: str, field: str
) -> None:
    _, pending = make_client(aiohttp_client, clock)
    client = await pending
    resp = await client.get("/oauth/authorize", params={**AUTHORIZE, **override})
    assert resp.status == 400
    assert await resp.json() == {
        "message": "Bad Request",
        "errors": [{"resource": resource, "field": field, "code": "invalid"}],
    }


async def test_approve_redirects_with_code_state_and_granted_scopes(
    aiohttp_client: Any, clock: ManualClock
) -> None:
    standin, pending = make_client(aiohttp_client, clock)
    client = await pending
    form = authorize_form(AUTHORIZE, granted=["activity:write"])  # unticked activity:read_all
    resp = await client.post("/oauth/authorize", data=form, allow_redirects=False)
    assert resp.status == 302
    location = URL(resp.headers["Location"])
    assert str(location.with_query(None)) == REDIRECT
    assert location.query["state"] == "st4te"
    assert location.query["scope"] == "read,activity:write"
    assert len(location.query["code"]) == 40
    assert len(standin.state.athletes) == 1  # "new" made an athlete


async def test_read_is_granted_even_when_nothing_is_ticked(aiohttp_client: Any, clock: ManualClock) -> None:
    _, pending = make_client(aiohttp_client, clock)
    client = await pending
    resp = await client.post(
        "/oauth/authorize", data=authorize_form(AUTHORIZE, granted=[]), allow_redirects=False
    )
    assert URL(resp.headers["Location"]).query["scope"] == "read"


async def test_granted_scopes_cannot_exceed_requested(aiohttp_client: Any, clock: ManualClock) -> None:
    _, pending = make_client(aiohttp_client, clock)
    client = await pending
    form = authorize_form({**AUTHORIZE, "scope": "read"}, granted=["activity:write"])
    resp = await client.post("/oauth/authorize", data=form, allow_redirects=False)
    assert URL(resp.headers["Location"]).query["scope"] == "read"


async def test_deny_redirects_with_access_denied(aiohttp_client: Any, clock: ManualClock) -> None:
    standin, pending = make_client(aiohttp_client, clock)
    client = await pending
    resp = await client.post(
        "/oauth/authorize", data=authorize_form(AUTHORIZE, decision="deny"), allow_redirects=False
    )
    assert resp.status == 302
    query = URL(resp.headers["Location"]).query
    assert dict(query) == {"state": "st4te", "error": "access_denied"}
    assert standin.state.grants == {}


async def test_capacity_refuses_new_athlete_but_not_a_connected_one(
    aiohttp_client: Any, clock: ManualClock
) -> None:
    standin, pending = make_client(aiohttp_client, clock, athlete_capacity=1)
    client = await pending
    first = await connect_athlete(client)
    athlete_id = first["athlete"]["id"]

    refused = await client.post("/oauth/authorize", data=authorize_form(AUTHORIZE), allow_redirects=False)
    assert refused.status == 403
    assert "Location" not in refused.headers
    assert "limit of connected athletes exceeded" in (await refused.text()).lower()
    assert len(standin.state.athletes) == 1

    again = await client.post(
        "/oauth/authorize", data=authorize_form(AUTHORIZE, athlete_id=athlete_id), allow_redirects=False
    )
    assert again.status == 302

    standin.revoke_athlete(athlete_id)  # frees the seat
    freed = await client.post("/oauth/authorize", data=authorize_form(AUTHORIZE), allow_redirects=False)
    assert freed.status == 302


# token exchange ----------------------------------------------------------------------------------


async def code_for(client: Any, **kw: Any) -> str:
    resp = await client.post("/oauth/authorize", data=authorize_form(AUTHORIZE, **kw), allow_redirects=False)
    return URL(resp.headers["Location"]).query["code"]


async def test_code_exchange_returns_strava_shape_and_is_single_use(
    aiohttp_client: Any, clock: ManualClock
) -> None:
    standin, pending = make_client(aiohttp_client, clock)
    client = await pending
    code = await code_for(client)
    data = {
        "client_id": "1001",
        "client_secret": "sandbox-secret",
        "code": code,
        "grant_type": "authorization_code",
    }
    resp = await client.post("/oauth/token", data=data)
    assert resp.status == 200
    body = await resp.json()
    assert set(body) == {"token_type", "expires_at", "expires_in", "refresh_token", "access_token", "athlete"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 21600
    assert body["expires_at"] == to_epoch(clock.now()) + 21600
    assert body["athlete"]["resource_state"] == 2
    assert {"id", "username", "firstname", "lastname"} <= set(body["athlete"])
    assert {body["access_token"], body["refresh_token"]} <= standin.issued_tokens
    assert "X-Ratelimit-Limit" not in resp.headers

    reused = await client.post("/oauth/token", params=data)  # query string works as well
    assert reused.status == 400
    assert await reused.json() == CODE_INVALID


async def test_code_expires_after_ten_minutes(aiohttp_client: Any, clock: ManualClock) -> None:
    _, pending = make_client(aiohttp_client, clock)
    client = await pending
    code = await code_for(client)
    clock.advance(601)
    data = {
        "client_id": "1001",
        "client_secret": "sandbox-secret",
        "code": code,
        "grant_type": "authorization_code",
    }
    resp = await client.post("/oauth/token", data=data)
    assert resp.status == 400
    assert await resp.json() == CODE_INVALID


async def test_token_rejects_wrong_client_id_and_secret(aiohttp_client: Any, clock: ManualClock) -> None:
    standin, pending = make_client(aiohttp_client, clock)
    client = await pending
    code = await code_for(client)
    base = {"code": code, "grant_type": "authorization_code"}
    wrong_id = await client.post(
        "/oauth/token", data={**base, "client_id": "7", "client_secret": "sandbox-secret"}
    )
    assert wrong_id.status == 400
    assert (await wrong_id.json())["errors"] == [
        {"resource": "Application", "field": "client_id", "code": "invalid"}
    ]
    wrong_secret = await client.post(
        "/oauth/token", data={**base, "client_id": "1001", "client_secret": "nope"}
    )
    assert wrong_secret.status == 401
    assert await wrong_secret.json() == APP_INVALID

    standin.reject_client_secret()
    rejected = await client.post(
        "/oauth/token", data={**base, "client_id": "1001", "client_secret": "sandbox-secret"}
    )
    assert rejected.status == 401
    assert await rejected.json() == APP_INVALID
    standin.reject_client_secret(False)
    ok = await client.post(
        "/oauth/token", data={**base, "client_id": "1001", "client_secret": "sandbox-secret"}
    )
    assert ok.status == 200  # the refused attempts did not use the code up


# refresh -----------------------------------------------------------------------------------------


async def test_refresh_returns_same_token_while_more_than_an_hour_is_left(
    aiohttp_client: Any, clock: ManualClock
) -> None:
    _, pending = make_client(aiohttp_client, clock)
    client = await pending
    tokens = await connect_athlete(client)
    clock.advance(2 * 3600)
    resp = await refresh(client, tokens["refresh_token"])
    assert resp.status == 200
    body = await resp.json()
    assert set(body) == {"token_type", "access_token", "expires_at", "expires_in", "refresh_token"}
    assert body["access_token"] == tokens["access_token"]
    assert body["expires_at"] == tokens["expires_at"]
    assert body["expires_in"] == 4 * 3600
    assert body["refresh_token"] == tokens["refresh_token"]


async def test_refresh_within_the_last_hour_issues_and_rotates(
    aiohttp_client: Any, clock: ManualClock
) -> None:
    _, pending = make_client(aiohttp_client, clock)
    client = await pending
    tokens = await connect_athlete(client)
    clock.advance(5 * 3600)  # exactly 3600 s left: "one hour or less" gets a new token
    resp = await refresh(client, tokens["refresh_token"])
    body = await resp.json()
    assert body["access_token"] != tokens["access_token"]
    assert body["expires_in"] == 21600
    assert body["refresh_token"] != tokens["refresh_token"]

    old = await refresh(client, tokens["refresh_token"])
    assert old.status == 400
    assert await old.json() == REFRESH_INVALID

    # the old access token still works until it expires, then only the new one does
    old_header = {"Authorization": f"Bearer {tokens['access_token']}"}
    new_header = {"Authorization": f"Bearer {body['access_token']}"}
    assert (await client.get("/api/v3/athlete", headers=old_header)).status == 200
    clock.advance(3601)
    assert (await client.get("/api/v3/athlete", headers=old_header)).status == 401
    assert (await client.get("/api/v3/athlete", headers=new_header)).status == 200


async def test_refresh_of_an_expired_token_works(aiohttp_client: Any, clock: ManualClock) -> None:
    _, pending = make_client(aiohttp_client, clock)
    client = await pending
    tokens = await connect_athlete(client)
    clock.advance(30 * 86400)
    resp = await refresh(client, tokens["refresh_token"])
    assert resp.status == 200
    assert (await resp.json())["access_token"] != tokens["access_token"]


async def test_unknown_refresh_token(aiohttp_client: Any, clock: ManualClock) -> None:
    _, pending = make_client(aiohttp_client, clock)
    client = await pending
    resp = await refresh(client, "0" * 40)
    assert resp.status == 400
    assert await resp.json() == REFRESH_INVALID


# revocation --------------------------------------------------------------------------------------


async def test_revoke_athlete_kills_every_token(aiohttp_client: Any, clock: ManualClock) -> None:
    standin, pending = make_client(aiohttp_client, clock)
    client = await pending
    tokens = await connect_athlete(client)
    standin.revoke_athlete(tokens["athlete"]["id"])
    api = await client.get("/api/v3/athlete", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert api.status == 401
    assert (await api.json())["errors"] == [
        {"resource": "Athlete", "field": "access_token", "code": "invalid"}
    ]
    resp = await refresh(client, tokens["refresh_token"])
    assert resp.status == 400
    assert await resp.json() == REFRESH_INVALID


async def test_deauthorize_revokes_and_echoes_token(aiohttp_client: Any, clock: ManualClock) -> None:
    standin, pending = make_client(aiohttp_client, clock)
    client = await pending
    tokens = await connect_athlete(client)
    header = {"Authorization": f"Bearer {tokens['access_token']}"}
    resp = await client.post("/oauth/deauthorize", headers=header)
    assert resp.status == 200
    assert await resp.json() == {"access_token": tokens["access_token"]}
    assert resp.headers["X-Ratelimit-Usage"] == "1,1"
    assert standin.state.grants == {}
    assert (await refresh(client, tokens["refresh_token"])).status == 400
    again = await client.post("/oauth/deauthorize", data={"access_token": tokens["access_token"]})
    assert again.status == 401
    assert (await again.json())["errors"][0]["resource"] == "Athlete"
    assert standin.deliveries == []  # app-initiated: no event


async def test_token_endpoint_also_under_api_v3(aiohttp_client: Any, clock: ManualClock) -> None:
    standin, pending = make_client(aiohttp_client, clock)
    client = await pending
    tokens = await connect_athlete(client)
    data = {
        "client_id": "1001",
        "client_secret": "sandbox-secret",
        "grant_type": "refresh_token",
        "refresh_token": tokens["refresh_token"],
    }
    resp = await client.post("/api/v3/oauth/token", data=data)
    assert resp.status == 200
    assert standin.count_calls("POST", "/oauth/token") == 2  # exchange + refresh, both spellings
    assert standin.calls[-1].path == "/api/v3/oauth/token"
    assert standin.calls[-1].athlete_id == tokens["athlete"]["id"]
    assert standin.calls[-1].status == 200


# forms from another site (issue 9, kind 7) ------------------------------------------------------


@pytest.mark.parametrize("headers", [{"Sec-Fetch-Site": "cross-site"}, {"Origin": "https://evil.example"}])
async def test_the_standins_own_forms_refuse_posts_from_another_site(
    aiohttp_client: Any, clock: ManualClock, headers: dict[str, str]
) -> None:
    standin, pending = make_client(aiohttp_client, clock)
    client = await pending
    consent = await client.post("/oauth/authorize", data=authorize_form(AUTHORIZE), headers=headers,
                                allow_redirects=False)
    assert consent.status == 403 and "another website" in await consent.text()
    assert not standin.state.athletes  # nobody was approved
    athlete = (await connect_athlete(client))["athlete"]["id"]
    for action in ("revoke", "activities"):
        refused = await client.post(f"/sandbox/athletes/{athlete}/{action}", headers=headers, allow_redirects=False)
        assert refused.status == 403
    assert standin.state.is_connected(athlete) and not standin.state.activities


async def test_the_standins_own_forms_work_from_its_own_pages(aiohttp_client: Any, clock: ManualClock) -> None:
    standin, pending = make_client(aiohttp_client, clock)
    client = await pending
    own = {"Origin": str(client.make_url("")).rstrip("/"), "Sec-Fetch-Site": "same-origin"}
    consent = await client.post("/oauth/authorize", data=authorize_form(AUTHORIZE), headers=own,
                                allow_redirects=False)
    assert consent.status == 302
    athlete = next(iter(standin.state.athletes))
    revoked = await client.post(f"/sandbox/athletes/{athlete}/revoke", headers={"Origin": own["Origin"]},
                                allow_redirects=False)
    assert revoked.status == 303
