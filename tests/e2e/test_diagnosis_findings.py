"""Every finding id of DESIGN.md's diagnosis vocabulary, produced by a real sequence of events.

The service runs in-process (its real routes, on a real port the stand-in can call back), the
local Strava stand-in plays Strava, the clock is moved instead of waited for. Each test ends in
`SupportDesk.diagnose` and checks the finding, its severity, who must act, and its action.
"""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select
from yarl import URL

from service.background.job_handlers import run_pending
from service.connections.refresh import usable_access_token
from service.db.models import StravaConnection
from service.desk.support_desk import SupportDesk
from standin.testing import authorize_form
from tests.flows import connect, press_connect
from tests.webhook_support import all_events, subscribed_service

pytestmark = pytest.mark.e2e

ALICE, BOB = "alice@example.com", "bob@example.com"
SEVERE = ("warning", "error")


@pytest.fixture
async def client(aiohttp_client, runtime):
    """The service, reachable by the stand-in, with its push subscription registered."""
    return await subscribed_service(aiohttp_client, runtime)


@pytest.fixture
def desk(runtime) -> SupportDesk:
    return SupportDesk(runtime)


async def settle(runtime) -> None:
    """Let the work a Connect starts in the background (the webhook check) finish."""
    while runtime._tasks:
        await asyncio.gather(*list(runtime._tasks), return_exceptions=True)


async def connect_user(client, runtime, desk, email: str = ALICE, **decision) -> tuple[int, str]:
    status, page = await connect(client, (await desk.issue_connect_link(email, "cli:agent")).url, **decision)
    await settle(runtime)
    return status, page


async def athlete_of(runtime, email: str) -> int:
    from service.db.models import User

    async with runtime.sessions() as session:
        return (await session.execute(select(StravaConnection.athlete_id).join(User)
                                      .where(User.email == email))).scalar_one()


async def processed_event_of(runtime, activity_id: int, within_s: float = 30) -> None:
    """Run the queue until the event about `activity_id` is processed: only a processed event counts
    as heard. On a busy machine the stand-in may stop waiting for our 200 before the event is stored,
    and a Strava call may time out and be retried after its backoff (moved on the injected clock)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while True:
        await run_pending(runtime)
        states = [event.state for event in await all_events(runtime) if event.object_id == activity_id]
        if states == ["processed"]:
            return
        assert loop.time() < deadline, f"the event about activity {activity_id} is {states or 'not stored'}"
        runtime.clock.advance(minutes=5)
        await asyncio.sleep(0.05)


def check(diagnosis, finding_id: str, severity: str, audience: str, actions: list[str]) -> None:
    finding = diagnosis.finding(finding_id)
    assert finding is not None, f"{finding_id} not among {diagnosis.ids}"
    assert (finding.severity, finding.audience, list(finding.actions)) == (severity, audience, actions)


# --- healthy and the plain statuses --------------------------------------------------------------


async def test_healthy_connection_has_no_warning_or_error(client, runtime, desk, standin):
    status, _ = await connect_user(client, runtime, desk)
    assert status == 200
    athlete = await athlete_of(runtime, ALICE)
    await standin.create_activity_and_notify(athlete)
    await run_pending(runtime)
    diagnosis = await desk.diagnose(ALICE)
    assert diagnosis.status == "connected"
    assert diagnosis.ids == ("healthy",)
    check(diagnosis, "healthy", "ok", "none", [])
    assert not [f for f in diagnosis.findings if f.severity in SEVERE + ("info",)]
    assert diagnosis.facts["last_event_at"] is not None
    # the same by athlete id, and a day later after the scheduler-style refresh
    assert (await desk.diagnose(str(athlete))).ids == ("healthy",)
    runtime.clock.advance(hours=5, minutes=30)
    assert (await desk.refresh_due("scheduler"))[0].refreshed
    assert (await desk.diagnose(ALICE)).ids == ("healthy",)


async def test_unknown_user(client, desk):
    diagnosis = await desk.diagnose("nobody@example.com")
    assert diagnosis.status == "unknown_user"
    check(diagnosis, "unknown_user", "warning", "user", ["send_connect_link"])
    assert (await desk.diagnose("424242")).status == "unknown_user"


async def test_not_connected_never_and_after_an_operator_disconnect(client, runtime, desk):
    await desk.issue_connect_link(BOB, "cli:agent")
    check(await desk.diagnose(BOB), "not_connected", "warning", "user", ["send_connect_link"])
    await connect_user(client, runtime, desk)
    await desk.disconnect(ALICE, "cli:agent")
    diagnosis = await desk.diagnose(ALICE)
    assert diagnosis.status == "not_connected"
    check(diagnosis, "not_connected", "warning", "user", ["send_connect_link"])
    assert "disconnected by cli:agent" in diagnosis.finding("not_connected").detail


# --- connecting ----------------------------------------------------------------------------------


async def test_authorization_failed_when_the_user_declines(client, runtime, desk):
    status, _ = await connect_user(client, runtime, desk, decision="deny")
    assert status == 403
    diagnosis = await desk.diagnose(ALICE)
    check(diagnosis, "authorization_failed", "error", "user", ["send_connect_link"])
    assert diagnosis.facts["last_attempt"]["outcome"] == "denied"


async def test_authorization_failed_when_the_strava_account_belongs_to_someone_else(client, runtime, desk):
    await connect_user(client, runtime, desk, ALICE)
    alice_athlete = await athlete_of(runtime, ALICE)
    status, _ = await connect_user(client, runtime, desk, BOB, athlete_id=alice_athlete)
    assert status == 409
    diagnosis = await desk.diagnose(BOB)
    check(diagnosis, "authorization_failed", "error", "user", ["send_connect_link"])
    assert diagnosis.facts["last_attempt"]["outcome"] == "athlete_conflict"
    assert (await desk.diagnose(ALICE)).ids == ("healthy",)  # the other user is untouched


async def test_authorization_failed_when_an_attempt_never_comes_back(client, runtime, desk):
    await press_connect(client, (await desk.issue_connect_link(ALICE, "cli:agent")).url)  # off to Strava...
    assert "authorization_failed" not in (await desk.diagnose(ALICE)).ids  # still in progress
    runtime.clock.advance(minutes=16)  # ...and never back
    diagnosis = await desk.diagnose(ALICE)
    check(diagnosis, "authorization_failed", "error", "user", ["send_connect_link"])
    assert diagnosis.facts["last_attempt"]["outcome"] == "pending"


async def test_app_capacity_reached(client, runtime, desk, standin):
    runtime.settings = runtime.settings.replaced(strava_athlete_capacity=1)
    standin.config.athlete_capacity = 1
    await connect_user(client, runtime, desk, ALICE)
    authorize = URL(await press_connect(client, (await desk.issue_connect_link(BOB, "cli:agent")).url))
    async with client.session.post(authorize.with_query(None), data=authorize_form(dict(authorize.query)),
                                   allow_redirects=False) as refused:
        assert refused.status == 403  # Strava's "limit of connected athletes exceeded" page; no way back
    diagnosis = await desk.diagnose(BOB)
    check(diagnosis, "app_capacity_reached", "error", "operator", [])
    assert diagnosis.facts["connected_athletes"] == 1 and diagnosis.facts["app_athlete_capacity"] == 1
    runtime.clock.advance(minutes=16)
    later = await desk.diagnose(BOB)
    assert later.ids.index("app_capacity_reached") < later.ids.index("authorization_failed")  # cause first
    assert (await desk.diagnose(ALICE)).ids == ("healthy",)  # connected users are not affected


async def test_missing_permissions_after_a_partial_grant(client, runtime, desk):
    status, page = await connect_user(client, runtime, desk,
                                      granted=["read", "activity:read_all", "profile:read_all"])
    assert status == 200
    diagnosis = await desk.diagnose(ALICE)
    assert diagnosis.status == "connected"
    check(diagnosis, "missing_permissions", "error", "user", ["send_connect_link"])
    assert "activity:write" in diagnosis.finding("missing_permissions").detail
    assert "healthy" not in diagnosis.ids


# --- a connection that stopped working -----------------------------------------------------------


async def test_needs_reauth_after_revocation_found_by_refresh(client, runtime, desk, standin):
    await connect_user(client, runtime, desk)
    standin.revoke_athlete(await athlete_of(runtime, ALICE))  # in Strava's settings; the event is not processed
    await standin.wait_for_deliveries()
    result = await desk.refresh_now(ALICE, "cli:agent")
    assert result.status == "needs_reauth"
    diagnosis = await desk.diagnose(ALICE)
    assert diagnosis.status == "needs_reauth"
    check(diagnosis, "needs_reauth", "error", "user", ["send_connect_link"])


async def test_revoked_after_a_confirmed_deauthorization_event(client, runtime, desk, standin):
    await connect_user(client, runtime, desk)
    standin.revoke_athlete(await athlete_of(runtime, ALICE))
    await standin.wait_for_deliveries()
    await run_pending(runtime)  # the worker confirms with Strava, then marks the connection revoked
    diagnosis = await desk.diagnose(ALICE)
    assert diagnosis.status == "revoked"
    check(diagnosis, "revoked", "warning", "user", ["send_connect_link"])
    assert "needs_reauth" not in diagnosis.ids


async def test_token_refresh_failing_when_strava_answers_503(client, runtime, desk, standin):
    await connect_user(client, runtime, desk)
    standin.fail_next("/oauth/token", 503)
    result = await desk.refresh_now(ALICE, "cli:agent")
    assert not result.refreshed and result.status == "connected"
    diagnosis = await desk.diagnose(ALICE)
    check(diagnosis, "token_refresh_failing", "warning", "support", ["refresh_token"])
    # pressing the offered action fixes it
    assert (await desk.refresh_now(ALICE, "slack:U1")).refreshed
    assert (await desk.diagnose(ALICE)).ids == ("healthy",)


async def test_strava_app_misconfigured_when_strava_rejects_our_secret(client, runtime, desk, standin):
    await connect_user(client, runtime, desk)
    standin.reject_client_secret()
    result = await desk.refresh_now(ALICE, "cli:agent")
    assert result.error_kind == "app_credentials_rejected"
    diagnosis = await desk.diagnose(ALICE)
    assert diagnosis.status == "connected"
    check(diagnosis, "strava_app_misconfigured", "error", "operator", [])
    assert "token_refresh_failing" not in diagnosis.ids  # not the user's, not transient


# --- webhooks ------------------------------------------------------------------------------------


async def test_webhook_missing_when_the_subscription_is_gone_and_reregistering_fixes_it(
        client, runtime, desk, standin):
    await connect_user(client, runtime, desk)
    assert (await desk.diagnose(ALICE)).ids == ("healthy",)
    assert standin.delete_subscription(str(standin.subscription["id"]))  # lost at Strava
    runtime.clock.advance(61)  # past the cached look
    diagnosis = await desk.diagnose(ALICE)
    check(diagnosis, "webhook_missing", "error", "support", ["reregister_webhook"])
    assert (await desk.webhooks.reregister_webhook("slack:U1")).ok  # the offered action
    assert (await desk.diagnose(ALICE)).ids == ("healthy",)


async def test_webhook_silent_when_others_are_heard(client, runtime, desk, standin):
    await connect_user(client, runtime, desk, ALICE)
    await connect_user(client, runtime, desk, BOB)
    runtime.clock.advance(days=15)
    bob = await athlete_of(runtime, BOB)
    activity = await standin.create_activity_and_notify(bob)  # bob is heard today
    await processed_event_of(runtime, activity)
    diagnosis = await desk.diagnose(ALICE)
    check(diagnosis, "webhook_silent", "info", "support", [])
    assert not [f for f in diagnosis.findings if f.severity in SEVERE]
    assert "webhook_silent" not in (await desk.diagnose(BOB)).ids


# --- rate limits ---------------------------------------------------------------------------------


async def test_rate_limited_when_strava_reports_usage_at_80_percent(client, runtime, desk, standin):
    await connect_user(client, runtime, desk)
    standin.config.read_limits = (10, 1000)  # Strava's headers tell us the limits
    async with runtime.sessions() as session:
        conn_id = (await session.execute(select(StravaConnection.id))).scalar_one()
    token = await usable_access_token(runtime, conn_id)
    assert token is not None and runtime.strava is not None
    for _ in range(8):
        await runtime.strava.get_athlete(token, interactive=True)
    diagnosis = await desk.diagnose(ALICE)
    check(diagnosis, "rate_limited", "warning", "operator", [])
    read_15 = next(b for b in diagnosis.facts["budgets"] if (b["budget"], b["window"]) == ("read", "15min"))
    assert read_15["usage"] >= 8 and read_15["limit"] == 10
    runtime.clock.advance(minutes=15)  # the window resets: usage from the old window no longer counts
    assert "rate_limited" not in (await desk.diagnose(ALICE)).ids


async def test_rate_limited_when_this_users_work_waits_for_the_next_window(client, runtime, desk, standin):
    await connect_user(client, runtime, desk)
    standin.config.read_limits = (10, 1000)
    async with runtime.sessions() as session:
        conn_id = (await session.execute(select(StravaConnection.id))).scalar_one()
    token = await usable_access_token(runtime, conn_id)
    assert token is not None and runtime.strava is not None
    for _ in range(10):  # the 15-minute read budget is used up
        await runtime.strava.get_athlete(token, interactive=True)
    await standin.create_activity_and_notify(await athlete_of(runtime, ALICE))
    await run_pending(runtime)  # the fetch cannot run now: it waits for the next window
    diagnosis = await desk.diagnose(ALICE)
    check(diagnosis, "rate_limited", "error", "operator", [])
    assert diagnosis.facts["user_jobs_waiting_for_window"] >= 1
    assert "next rate-limit window" in diagnosis.finding("rate_limited").detail
