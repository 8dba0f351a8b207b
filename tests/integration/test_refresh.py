"""Token refresh against the stand-in: the scheduler's sweep, the one-hour rule, failures by kind."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select

from service.app.factory import build_app
from service.background.scheduler import refresh_sweep
from service.connections.refresh import backoff_after, refresh_connection, sweep_due, usable_access_token
from service.connections.tokens import access_token
from service.db.models import ConnectionHistory, StravaConnection
from service.desk.support_desk import SupportDesk
from tests.flows import connect
from troubleshooting.vocabulary import ConnectionStatus, RefreshErrorKind


@pytest.fixture
async def connected(aiohttp_client, runtime):
    """Alice, connected with every permission; returns her connection id."""
    client = await aiohttp_client(build_app(runtime, background=False))
    url = (await SupportDesk(runtime).issue_connect_link("alice@example.com", "test")).url
    status, _ = await connect(client, url)
    assert status == 200
    async with runtime.sessions() as session:
        return (await session.execute(select(StravaConnection.id))).scalar_one()


async def row(runtime, conn_id) -> StravaConnection:
    async with runtime.sessions() as session:
        return await session.get(StravaConnection, conn_id)


async def test_fresh_token_is_not_due(runtime, connected, standin):
    assert await sweep_due(runtime) == []
    assert standin.count_calls("POST", "/oauth/token") == 1  # only the code exchange


async def test_token_due_within_margin_is_refreshed_by_the_sweep_and_rotated(runtime, connected, standin, clock):
    before = await row(runtime, connected)
    clock.advance(5 * 3600 + 60)  # 59 minutes left: inside the default one-hour margin
    await refresh_sweep(runtime)
    after = await row(runtime, connected)
    assert after.expires_at > before.expires_at
    assert after.refresh_token_enc != before.refresh_token_enc  # the rotated refresh token was stored
    assert after.last_refresh_at == clock.now() and after.status == ConnectionStatus.CONNECTED
    # the old refresh token is dead at Strava; the stored one must be the live one
    clock.advance(6 * 3600)
    result = await refresh_connection(runtime, connected)
    assert result.refreshed


async def test_two_concurrent_sweeps_refresh_a_token_once(runtime, connected, standin, clock):
    clock.advance(5 * 3600 + 60)
    calls = standin.count_calls("POST", "/oauth/token")
    results = await asyncio.gather(sweep_due(runtime), sweep_due(runtime), sweep_due(runtime))
    assert sum(len(r) for r in results) == 1
    assert standin.count_calls("POST", "/oauth/token") == calls + 1


async def test_revoked_grant_ends_in_needs_reauth_and_drops_tokens(runtime, connected, standin, clock):
    conn = await row(runtime, connected)
    standin.revoke_athlete(conn.athlete_id)
    clock.advance(5 * 3600 + 60)
    results = await sweep_due(runtime)
    assert results[0].status == ConnectionStatus.NEEDS_REAUTH and results[0].error_kind == RefreshErrorKind.GRANT_DEAD
    after = await row(runtime, connected)
    assert after.status == ConnectionStatus.NEEDS_REAUTH and after.access_token_enc is None and after.refresh_token_enc is None
    assert "RefreshToken/refresh_token/invalid" in after.last_refresh_error
    assert await sweep_due(runtime) == []  # never retried: only the user can fix it


@pytest.mark.parametrize("status", [500, 503, 429])
async def test_transient_failures_keep_status_and_back_off(runtime, connected, standin, clock, status):
    clock.advance(5 * 3600 + 60)
    standin.fail_next("/oauth/token", status, count=2)
    first = (await sweep_due(runtime))[0]
    assert first.status == ConnectionStatus.CONNECTED and first.failed
    after = await row(runtime, connected)
    assert after.status == ConnectionStatus.CONNECTED and after.refresh_failures == 1
    assert after.next_refresh_at == clock.now() + backoff_after(1)
    assert await sweep_due(runtime) == []  # waiting out the backoff
    clock.advance(61)
    second = (await sweep_due(runtime))[0]
    assert second.failed and (await row(runtime, connected)).refresh_failures == 2
    clock.advance(backoff_after(2).total_seconds() + 1)
    third = (await sweep_due(runtime))[0]
    assert third.refreshed and (await row(runtime, connected)).refresh_failures == 0


async def test_timeout_is_transient(runtime, connected, standin, clock):
    import dataclasses

    from service.strava import StravaClient

    clock.advance(5 * 3600 + 60)
    runtime.strava = StravaClient(runtime.http, oauth_url=runtime.settings.strava_oauth_url,
                                  api_url=runtime.settings.strava_api_url, client_id=standin.config.client_id,
                                  client_secret=standin.config.client_secret, clock=clock, timeout_s=0.3)
    standin.fail_next("/oauth/token", 200, timeout=True)
    result = (await sweep_due(runtime))[0]
    assert result.error_kind == RefreshErrorKind.TRANSIENT and result.status == ConnectionStatus.CONNECTED
    assert dataclasses.asdict(result)["status"] == ConnectionStatus.CONNECTED


async def test_rejected_client_secret_does_not_touch_the_users_status(runtime, connected, standin, clock):
    alerts = []

    class Recorder:
        async def alert(self, kind, message):
            alerts.append(kind)

    runtime.alerts = Recorder()
    standin.reject_client_secret()
    clock.advance(5 * 3600 + 60)
    result = (await sweep_due(runtime))[0]
    assert result.status == ConnectionStatus.CONNECTED and result.error_kind == RefreshErrorKind.APP_CREDENTIALS_REJECTED
    after = await row(runtime, connected)
    assert after.status == ConnectionStatus.CONNECTED and after.refresh_token_enc is not None
    assert alerts == ["app_credentials_rejected"]


async def test_refresh_now_forces_a_call_and_reports_needs_reauth(runtime, connected, standin):
    desk = SupportDesk(runtime)
    ok = await desk.refresh_now("alice@example.com", "test")
    assert ok.refreshed and ok.status == ConnectionStatus.CONNECTED
    standin.revoke_athlete((await row(runtime, connected)).athlete_id)
    dead = await desk.refresh_now("ALICE@example.com", "test")
    assert not dead.refreshed and dead.status == ConnectionStatus.NEEDS_REAUTH


async def test_usable_access_token_refreshes_first_when_due(runtime, connected, standin, clock):
    before = await row(runtime, connected)
    clock.advance(5 * 3600 + 30 * 60)
    token = await usable_access_token(runtime, connected)
    after = await row(runtime, connected)
    assert token == access_token(after, runtime.cipher) and after.expires_at > before.expires_at


async def test_disconnect_forgets_tokens_even_when_strava_fails(runtime, connected, standin):
    standin.fail_next("/oauth/deauthorize", 503)
    result = await SupportDesk(runtime).disconnect("alice@example.com", "test")
    assert result.warning and not result.deauthorized
    after = await row(runtime, connected)
    assert after.status == ConnectionStatus.NOT_CONNECTED and after.access_token_enc is None and after.refresh_token_enc is None


async def test_disconnect_deauthorizes_at_strava(runtime, connected, standin):
    calls = standin.count_calls("POST", "/oauth/deauthorize")
    result = await SupportDesk(runtime).disconnect("alice@example.com", "test")
    assert result.deauthorized and result.warning is None
    assert standin.count_calls("POST", "/oauth/deauthorize") == calls + 1


async def test_backoff_grows_and_caps():
    assert [backoff_after(n) for n in (1, 2, 3)] == [timedelta(minutes=1), timedelta(minutes=2), timedelta(minutes=4)]
    assert backoff_after(30) == timedelta(hours=1)


# --- a refresh whose answer arrives after the connection changed (review of issues 11 and 12) ---------


def _during_the_refresh(runtime, monkeypatch, change, refused: bool = False):
    """Strava's refresh answer arrives only after `change` (a disconnect, a confirmed revocation) ran."""
    strava = runtime.require_strava()
    original = strava.refresh

    async def refresh(token):
        outcome = original(token)
        if refused:  # Strava has already dropped the grant by the time it answers
            await change()
            return await outcome
        grant = await outcome
        await change()
        return grant

    monkeypatch.setattr(strava, "refresh", refresh)


async def test_a_refresh_answered_after_a_disconnect_stores_no_tokens(runtime, connected, standin, clock,
                                                                      monkeypatch):
    clock.advance(5 * 3600 + 60)
    _during_the_refresh(runtime, monkeypatch,
                        lambda: SupportDesk(runtime).disconnect("alice@example.com", "test"))
    await refresh_connection(runtime, connected)
    after = await row(runtime, connected)
    assert after.status == ConnectionStatus.NOT_CONNECTED
    # `disconnect` forgets the tokens; the refresh in flight must not write new ones back
    assert (after.access_token_enc, after.refresh_token_enc, after.expires_at) == (None, None, None)
    assert after.refresh_lease_until is None
    async with runtime.sessions() as session:  # no refresh noted in the user's history either
        kinds = list((await session.execute(select(ConnectionHistory.kind))).scalars())
    assert "refresh_ok" not in kinds


@pytest.mark.parametrize("status", [ConnectionStatus.REVOKED, ConnectionStatus.NOT_CONNECTED])
async def test_a_refresh_refused_after_the_connection_ended_keeps_its_status(runtime, connected, standin, clock,
                                                                             monkeypatch, status):
    """The athlete revoked (a confirmed deauthorization) or was disconnected while the refresh was at
    Strava, which then refused the grant: the connection keeps what it became, not `needs_reauth`."""
    clock.advance(5 * 3600 + 60)

    async def end_it():
        athlete = (await row(runtime, connected)).athlete_id
        standin.state.revoke(athlete)
        async with runtime.sessions() as session, session.begin():
            conn = await session.get(StravaConnection, connected)
            conn.status = status
            conn.access_token_enc = conn.refresh_token_enc = None
            conn.expires_at = None

    _during_the_refresh(runtime, monkeypatch, end_it, refused=True)
    await refresh_connection(runtime, connected)
    after = await row(runtime, connected)
    assert after.status == status
    assert (after.access_token_enc, after.refresh_token_enc) == (None, None)
    async with runtime.sessions() as session:  # nor does the user's history say it became needs_reauth
        changes = list((await session.execute(select(ConnectionHistory.detail).where(
            ConnectionHistory.kind == "status_changed"))).scalars())
    assert ConnectionStatus.NEEDS_REAUTH not in changes
