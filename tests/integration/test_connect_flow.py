"""The Connect flow against the Strava stand-in: every success and failure path of the callback."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from service.app.factory import build_app
from service.db.models import ConnectLink, OAuthAttempt, StravaConnection, User
from service.desk.support_desk import SupportDesk
from standin import StravaStandin
from tests.flows import SAME_ORIGIN, connect, decide_at_strava, link_path, press_connect
from troubleshooting.vocabulary import AttemptOutcome, ConnectionStatus

ALL_SCOPES = ["read", "activity:read_all", "activity:write", "profile:read_all"]


@pytest.fixture
async def client(aiohttp_client, runtime):
    return await aiohttp_client(build_app(runtime, background=False))


async def issue(runtime, email="alice@example.com"):
    return (await SupportDesk(runtime).issue_connect_link(email, "test")).url


async def connection_of(runtime, email="alice@example.com") -> StravaConnection | None:
    async with runtime.sessions() as session:
        row = await session.execute(select(StravaConnection).join(User).where(User.email_normalized == email))
        return row.scalar_one_or_none()


async def last_attempt(runtime) -> OAuthAttempt:
    async with runtime.sessions() as session:
        return (await session.execute(select(OAuthAttempt).order_by(OAuthAttempt.id.desc()))).scalars().first()


async def test_page_names_account_and_status_without_using_the_link(client, runtime):
    url = await issue(runtime)
    for _ in range(3):  # unfurlers and mail scanners fetch links: opening must not use it up
        page = await client.get(link_path(url))
        assert page.status == 200
        html = await page.text()
        assert "alice@example.com" in html and "Not connected" in html and "Connect with Strava" in html
        assert page.headers["Referrer-Policy"] == "no-referrer"


async def test_full_grant_connects_stores_encrypted_tokens_and_uses_the_link(client, runtime, standin: StravaStandin):
    url = await issue(runtime)
    status, html = await connect(client, url)
    assert status == 200 and "Connected" in html
    conn = await connection_of(runtime)
    assert conn is not None and conn.status == ConnectionStatus.CONNECTED and conn.athlete_id
    assert set(conn.granted_scopes.split(",")) == set(ALL_SCOPES)
    for token in standin.issued_tokens:
        assert token not in (conn.access_token_enc or "") and token not in (conn.refresh_token_enc or "")
        assert token not in html
    assert (await last_attempt(runtime)).outcome == AttemptOutcome.CONNECTED
    again = await client.get(link_path(url))
    assert again.status == 410 and "already used" in (await again.text())


async def test_authorize_request_asks_every_permission_with_forced_prompt(client, runtime):
    from yarl import URL

    authorize = URL(await press_connect(client, await issue(runtime)))
    assert authorize.query["scope"] == "read,activity:read_all,activity:write,profile:read_all"
    assert authorize.query["approval_prompt"] == "force"
    assert authorize.query["redirect_uri"] == "http://localhost:8080/oauth/strava/callback"
    assert len(authorize.query["state"]) >= 22  # at least 128 bits of randomness


async def test_state_cookie_is_httponly_samesite_lax(client, runtime):
    token_url = await issue(runtime)
    from yarl import URL

    response = await client.post("/connect/strava/authorize", data={"t": URL(token_url).query["t"]},
                                 headers=SAME_ORIGIN, allow_redirects=False)
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie


async def test_denied_records_attempt_and_changes_nothing(client, runtime):
    url = await issue(runtime)
    status, html = await connect(client, url, decision="deny")
    assert status == 403 and "not connected" in html.lower()
    conn = await connection_of(runtime)
    assert conn is None or conn.status == ConnectionStatus.NOT_CONNECTED
    attempt = await last_attempt(runtime)
    assert attempt.outcome == AttemptOutcome.DENIED and attempt.finished_at is not None
    assert (await client.get(link_path(url))).status == 200  # the link still works for another try


async def test_partial_grant_connects_with_warning_and_keeps_the_link(client, runtime):
    url = await issue(runtime)
    status, html = await connect(client, url, granted=["read", "activity:read_all", "profile:read_all"])
    assert status == 200
    assert "Writing activities was not allowed" in html and "Try again" in html
    conn = await connection_of(runtime)
    assert conn.status == ConnectionStatus.CONNECTED and "activity:write" not in conn.granted_scopes
    assert (await last_attempt(runtime)).outcome == AttemptOutcome.PARTIAL
    # the same link lets the user try again, and a full grant then uses it up
    status, _ = await connect(client, url, athlete_id=conn.athlete_id)
    assert status == 200
    async with runtime.sessions() as session:
        link = (await session.execute(select(ConnectLink))).scalars().one()
        assert link.used_at is not None
    assert "activity:write" in (await connection_of(runtime)).granted_scopes


async def test_athlete_linked_to_another_user_is_refused_and_nothing_changes(client, runtime, standin):
    status, _ = await connect(client, await issue(runtime, "first@example.com"))
    first = await connection_of(runtime, "first@example.com")
    deauth_calls = standin.count_calls("POST", "/oauth/deauthorize")
    status, html = await connect(client, await issue(runtime, "second@example.com"), athlete_id=first.athlete_id)
    assert status == 409 and "different Strava account" in html
    assert (await connection_of(runtime, "second@example.com")) in (None,) or \
        (await connection_of(runtime, "second@example.com")).status == ConnectionStatus.NOT_CONNECTED
    assert (await connection_of(runtime, "first@example.com")).access_token_enc == first.access_token_enc
    assert standin.count_calls("POST", "/oauth/deauthorize") == deauth_calls  # never revoke the other grant
    assert (await last_attempt(runtime)).outcome == AttemptOutcome.ATHLETE_CONFLICT


async def test_reconnecting_the_same_athlete_replaces_tokens(client, runtime):
    await connect(client, await issue(runtime))
    before = await connection_of(runtime)
    status, _ = await connect(client, await issue(runtime), athlete_id=before.athlete_id)
    after = await connection_of(runtime)
    assert status == 200 and after.athlete_id == before.athlete_id
    assert after.refresh_token_enc != before.refresh_token_enc


async def test_callback_without_or_with_unknown_state_is_400(client, runtime):
    assert (await client.get("/oauth/strava/callback", params={"code": "x"})).status == 400
    response = await client.get("/oauth/strava/callback", params={"code": "x", "state": "made-up"})
    assert response.status == 400 and "could not be completed" in await response.text()


async def test_replayed_state_never_exchanges_twice(client, runtime, standin):
    authorize = await press_connect(client, await issue(runtime))
    query = await decide_at_strava(authorize)
    assert (await client.get("/oauth/strava/callback", params=query)).status == 200
    exchanges = standin.count_calls("POST", "/oauth/token")
    client.session.cookie_jar.clear()
    client.session.cookie_jar.update_cookies({"fitglue_oauth": "whatever"})
    replay = await client.get("/oauth/strava/callback", params=query)
    assert replay.status == 410 and "already finished" in await replay.text()
    assert standin.count_calls("POST", "/oauth/token") == exchanges


async def test_state_from_another_browser_is_refused(client, runtime, aiohttp_client):
    authorize = await press_connect(client, await issue(runtime))
    query = await decide_at_strava(authorize)
    client.session.cookie_jar.clear()
    response = await client.get("/oauth/strava/callback", params=query)
    assert response.status == 400 and "different browser" in await response.text()
    assert (await connection_of(runtime)) is None


async def test_expired_state_is_refused(client, runtime, clock):
    authorize = await press_connect(client, await issue(runtime))
    query = await decide_at_strava(authorize)
    clock.advance(11 * 60)
    response = await client.get("/oauth/strava/callback", params=query)
    assert response.status == 400 and "10 minutes" in await response.text()
    assert (await last_attempt(runtime)).outcome == AttemptOutcome.STATE_INVALID


async def test_failing_code_exchange_is_explained(client, runtime, standin):
    authorize = await press_connect(client, await issue(runtime))
    query = await decide_at_strava(authorize)
    standin.fail_next("/oauth/token", 400, {"message": "Bad Request", "errors": [
        {"resource": "AuthorizationCode", "field": "code", "code": "invalid"}]})
    response = await client.get("/oauth/strava/callback", params=query)
    assert response.status == 400
    attempt = await last_attempt(runtime)
    assert attempt.outcome == AttemptOutcome.EXCHANGE_FAILED and "AuthorizationCode/code/invalid" in attempt.reason
    assert (await connection_of(runtime)) is None


async def test_rejected_client_secret_is_an_operator_problem(client, runtime, standin):
    authorize = await press_connect(client, await issue(runtime))
    query = await decide_at_strava(authorize)
    standin.reject_client_secret()
    response = await client.get("/oauth/strava/callback", params=query)
    assert response.status == 400 and "on our side" in await response.text()
    assert (await last_attempt(runtime)).outcome == AttemptOutcome.APP_REJECTED


async def test_tampered_link_is_400_and_expired_link_410(client, runtime, clock):
    url = await issue(runtime)
    tampered = await client.get(link_path(url)[:-3] + "abc")
    assert tampered.status == 400 and "damaged" in await tampered.text()
    assert (await client.get("/connect/strava?t=")).status == 400
    clock.advance(runtime.settings.link_ttl_s + 1)
    expired = await client.get(link_path(url))
    assert expired.status == 410 and "expired" in await expired.text()
    from yarl import URL

    press = await client.post("/connect/strava/authorize", data={"t": URL(url).query["t"]}, headers=SAME_ORIGIN,
                              allow_redirects=False)
    assert press.status == 410


async def test_links_signed_with_a_previous_key_still_work(runtime, aiohttp_client, database_url, standin, clock):

    from service.app.bootstrap import open_runtime

    url = await issue(runtime)
    rotated = runtime.settings.replaced(secret_key="a-brand-new-key-9876543210",
                                  previous_secret_keys=(runtime.settings.secret_key,))
    rt2 = await open_runtime(rotated, clock)
    try:
        client2 = await aiohttp_client(build_app(rt2, background=False))
        assert (await client2.get(link_path(url))).status == 200
    finally:
        await rt2.close()


async def test_pending_attempt_is_recorded_before_leaving_for_strava(client, runtime, clock):
    await press_connect(client, await issue(runtime))
    attempt = await last_attempt(runtime)
    assert attempt.outcome == AttemptOutcome.PENDING and attempt.expires_at - attempt.started_at == timedelta(minutes=10)


async def test_success_page_names_the_strava_athlete_and_says_connected_once(client, runtime, standin):
    athlete = standin.add_athlete(firstname="Rosa", lastname="<b>Parks</b>")
    status, html = await connect(client, await issue(runtime), athlete_id=athlete)
    assert status == 200
    assert f"Rosa &lt;b&gt;Parks&lt;/b&gt; (Strava athlete {athlete})" in html  # named, and escaped
    assert html.count("Connected") == 1  # the heading; no second "Connected" badge under it
    for token in standin.issued_tokens:
        assert token not in html


async def test_different_account_page_names_the_account_that_was_used(client, runtime, standin):
    athlete = standin.add_athlete(firstname="Kip", lastname="Stride")
    await connect(client, await issue(runtime, "first@example.com"), athlete_id=athlete)
    status, html = await connect(client, await issue(runtime, "second@example.com"), athlete_id=athlete)
    assert status == 409
    assert f"You signed in to Strava as Kip Stride (Strava athlete {athlete})" in html
    assert "first@example.com" not in html  # the other FitGlue account stays unnamed
    for token in standin.issued_tokens:
        assert token not in html
