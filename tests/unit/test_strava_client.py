"""Strava's failure shapes (reference notes §1.5, §7) mapped to typed errors, with aioresponses."""

from __future__ import annotations

import re

import aiohttp
import pytest
from aioresponses import aioresponses

from service.core.clock import ManualClock
from service.strava import (
    AccessTokenInvalid,
    AppCredentialsRejected,
    BadAuthorizationCode,
    GrantRevoked,
    MissingScope,
    NotFound,
    RateLimited,
    StravaClient,
    StravaRequestError,
    Transient,
)

OAUTH = "https://strava.test/oauth"
API = "https://strava.test/api/v3"


def fault(resource, field, code, message="Bad Request"):
    return {"message": message, "errors": [{"resource": resource, "field": field, "code": code}]}


@pytest.fixture
async def client():
    async with aiohttp.ClientSession() as session:
        yield StravaClient(session, oauth_url=OAUTH, api_url=API, client_id="5", client_secret="top-secret",
                           clock=ManualClock())


@pytest.mark.parametrize("status,body,error", [
    (400, fault("RefreshToken", "refresh_token", "invalid"), GrantRevoked),
    (400, fault("Application", "client_id", "invalid"), AppCredentialsRejected),
    (401, fault("Application", "", "invalid", "Authorization Error"), AppCredentialsRejected),
    (429, {"message": "Rate Limit Exceeded", "errors": [
        {"resource": "Application", "field": "rate limit", "code": "exceeded"}]}, RateLimited),
    (503, None, Transient),
    (500, {"message": "oops"}, Transient),
])
async def test_refresh_failures_become_typed_errors(client, status, body, error):
    with aioresponses() as mock:
        mock.post(f"{OAUTH}/token", status=status, payload=body)
        with pytest.raises(error) as info:
            await client.refresh("rt-value")
    assert "rt-value" not in str(info.value) and "top-secret" not in str(info.value)


@pytest.mark.parametrize("body", [
    fault("AuthorizationCode", "code", "invalid"),
    fault("RequestToken", "code", "invalid"),
    fault("AuthorizationCode", "", "expired"),
])
async def test_code_exchange_failures(client, body):
    with aioresponses() as mock:
        mock.post(f"{OAUTH}/token", status=400, payload=body)
        with pytest.raises(BadAuthorizationCode):
            await client.exchange_code("c")


@pytest.mark.parametrize("status,body,error", [
    (401, fault("AccessToken", "activity:read_permission", "missing", "Authorization Error"), MissingScope),
    (401, fault("Athlete", "access_token", "invalid", "Authorization Error"), AccessTokenInvalid),
    (404, fault("Activity", "id", "invalid", "Record Not Found"), NotFound),
    (404, None, NotFound),
    (400, {"message": "Bad Request", "errors": []}, StravaRequestError),
])
async def test_api_failures(client, status, body, error):
    with aioresponses() as mock:
        mock.get(f"{API}/activities/42", status=status, payload=body)
        with pytest.raises(error):
            await client.get_activity("at", 42)


async def test_message_text_alone_never_decides(client):
    # A 400 whose message mentions the refresh token but whose fault codes don't is not a dead grant.
    with aioresponses() as mock:
        mock.post(f"{OAUTH}/token", status=400, payload={"message": "RefreshToken invalid", "errors": []})
        with pytest.raises(StravaRequestError):
            await client.refresh("x")


async def test_connection_errors_and_timeouts_are_transient_and_do_not_leak_the_secret(client, caplog):
    with aioresponses() as mock:
        mock.get(re.compile(rf"{API}/push_subscriptions.*"), exception=aiohttp.ClientConnectionError("boom"))
        with pytest.raises(Transient) as info:
            await client.list_subscriptions()
        mock.post(f"{OAUTH}/token", exception=TimeoutError())
        with pytest.raises(Transient):
            await client.refresh("x")
    assert "top-secret" not in str(info.value) and "top-secret" not in caplog.text


async def test_token_grant_parsing_and_repr_hides_tokens(client):
    with aioresponses() as mock:
        mock.post(f"{OAUTH}/token", payload={"token_type": "Bearer", "access_token": "AT1", "refresh_token": "RT1",
                                             "expires_at": 1568775134, "expires_in": 21600,
                                             "athlete": {"id": 12342176}})
        grant = await client.exchange_code("code")
    assert (grant.access_token, grant.refresh_token, grant.athlete["id"]) == ("AT1", "RT1", 12342176)
    assert "AT1" not in repr(grant) and "RT1" not in repr(grant)


async def test_subscription_create_accepts_both_documented_answers(client):
    with aioresponses() as mock:
        mock.post(f"{API}/push_subscriptions", status=200, payload={"id": 1})
        mock.post(f"{API}/push_subscriptions", status=201, payload={
            "id": 131300, "resource_state": 2, "application_id": 24523, "callback_url": "http://x/",
            "created_at": "2018-11-29T21:46:21.854786016Z", "updated_at": "2018-11-29T21:46:21.854785155Z"})
        assert await client.create_subscription("http://x/", "v") == 1
        assert await client.create_subscription("http://x/", "v") == 131300


def test_authorize_url(client):
    url = client.authorize_url("http://localhost:8080/oauth/strava/callback", "st", ("read", "activity:write"))
    assert url.startswith(f"{OAUTH}/authorize?")
    for part in ("client_id=5", "response_type=code", "approval_prompt=force", "state=st",
                 "scope=read%2Cactivity%3Awrite"):
        assert part in url
    assert "top-secret" not in url


GOOD_GRANT = {"token_type": "Bearer", "access_token": "AT1", "refresh_token": "RT1", "expires_at": 1568775134}
ODD_GRANTS = [
    {**GOOD_GRANT, "access_token": None},  # once stored and handed out as the text "None"
    {**GOOD_GRANT, "refresh_token": None},  # once stored as "None": the real refresh token lost for good
    {**GOOD_GRANT, "access_token": ""},
    {**GOOD_GRANT, "refresh_token": ""},
    {**GOOD_GRANT, "access_token": {"value": "AT1"}},
    {**GOOD_GRANT, "refresh_token": ["RT1"]},
    {**GOOD_GRANT, "expires_at": True},
    {**GOOD_GRANT, "expires_at": 10**20},  # once an OverflowError out of the refresh: the lease kept 2 min
    {**GOOD_GRANT, "expires_at": -1},
    {**GOOD_GRANT, "expires_at": "soon"},
    {**GOOD_GRANT, "expires_at": 1.5e300},
    {**GOOD_GRANT, "expires_at": None},
]


@pytest.mark.parametrize("body", ODD_GRANTS, ids=range(len(ODD_GRANTS)))
async def test_an_odd_token_answer_is_transient_never_a_grant(client, body):
    """A 200 from /oauth/token without two non-empty token strings and a usable expiry is not a grant:
    storing it would hand out a token that is not one, or replace the refresh token with junk."""
    for call in (client.refresh, client.exchange_code):
        with aioresponses() as mock:
            mock.post(f"{OAUTH}/token", payload=body)
            with pytest.raises(Transient):
                await call("value")


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_a_redirect_is_an_error_and_is_not_followed(client, status):
    """Strava's API does not redirect. Followed, a 307/308 would resend the token request, client
    secret and refresh token included, to wherever the Location header points."""
    grant = {"token_type": "Bearer", "access_token": "a" * 40, "refresh_token": "r" * 40,
             "expires_at": 1_900_000_000, "expires_in": 21600}
    with aioresponses() as mock:
        mock.post(f"{OAUTH}/token", status=status, headers={"Location": "https://elsewhere.test/collect"})
        mock.post("https://elsewhere.test/collect", status=200, payload=grant)
        mock.get("https://elsewhere.test/collect", status=200, payload=grant)
        with pytest.raises(StravaRequestError) as info:
            await client.refresh("rt-value")
        assert info.value.status == status
        assert not [key for key in mock.requests if "elsewhere" in str(key[1])]


async def test_an_answer_too_large_to_read_is_an_error(client, monkeypatch):
    """Strava's answers are a few kilobytes of JSON; one past MAX_ANSWER_BYTES is not read into
    memory (it was read whole, however large)."""
    from service.strava import client as strava_client

    monkeypatch.setattr(strava_client, "MAX_ANSWER_BYTES", 1000)
    with aioresponses() as mock:
        mock.get(re.compile(rf"{API}/push_subscriptions.*"), status=200, body="[" + "{}," * 500 + "{}]")
        with pytest.raises(StravaRequestError) as info:
            await client.list_subscriptions()
        assert info.value.status == 200 and "too large" in str(info.value)
        mock.get(re.compile(rf"{API}/push_subscriptions.*"), status=200, body="[]")
        assert await client.list_subscriptions() == []  # a short answer reads as before
