"""Gathering diagnosis facts from the database and the live subscription look (SupportDesk.diagnose)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import delete, select

from service.app.bootstrap import open_runtime
from service.app.factory import build_app
from service.db.models import Job, OAuthAttempt, RateLimitState, StravaConnection, User, WebhookEvent
from service.desk.support_desk import SupportDesk, SupportError
from service.subscription.cache import subscription_cache
from tests.conftest import make_settings
from tests.flows import connect
from tests.webhook_support import connect_directly
from troubleshooting.vocabulary import RefreshErrorKind

ALICE = "alice@example.com"


@pytest.fixture
async def desk(runtime):
    return SupportDesk(runtime)


@pytest.fixture
async def alice(aiohttp_client, runtime, desk, standin):
    """Alice connected with every permission, the push subscription registered at the stand-in."""
    client = await aiohttp_client(build_app(runtime, background=False))
    url = (await desk.issue_connect_link(ALICE, "test")).url
    status, _ = await connect(client, url)
    assert status == 200
    async with runtime.sessions() as session:
        return (await session.execute(select(StravaConnection))).scalar_one()


async def test_unknown_e_mail_and_unknown_athlete_are_diagnoses(desk):
    for who in ("nobody@example.com", "987654"):
        diagnosis = await desk.diagnose(who)
        assert diagnosis.status == "unknown_user" and diagnosis.email is None
        assert "unknown_user" in diagnosis.ids and "healthy" not in diagnosis.ids
        assert diagnosis.facts["who"] == who


@pytest.mark.parametrize("who", ["", "   ", "not an email", "bob"])
async def test_a_who_that_is_neither_e_mail_nor_athlete_id_is_a_bad_argument(desk, who):
    with pytest.raises(SupportError) as caught:
        await desk.diagnose(who)
    assert caught.value.code == "bad_argument" and caught.value.exit_code == 2


async def test_user_without_connection_row_is_not_connected(desk):
    await desk.issue_connect_link("Bob@Example.com", "test")
    diagnosis = await desk.diagnose("bob@EXAMPLE.com")
    assert diagnosis.status == "not_connected" and diagnosis.email == "Bob@Example.com"
    assert "not_connected" in diagnosis.ids
    assert diagnosis.facts["last_attempt"] is None


async def test_connected_user_found_by_e_mail_and_by_athlete_id(desk, alice):
    by_mail = await desk.diagnose(ALICE)
    by_id = await desk.diagnose(str(alice.athlete_id))
    assert by_mail.athlete_id == by_id.athlete_id == alice.athlete_id
    assert by_mail.status == "connected"
    facts = by_mail.facts
    assert facts["granted_scopes"] == ["activity:read_all", "activity:write", "profile:read_all", "read"]
    assert facts["last_attempt"]["outcome"] == "connected"
    assert facts["connected_athletes"] == 1


async def test_facts_hold_no_secrets(desk, alice, runtime, standin):
    text = str((await desk.diagnose(ALICE)).to_dict())
    assert runtime.settings.secret_key.get_secret_value() not in text
    assert standin.config.client_secret not in text
    for token in standin.issued_tokens:
        assert token not in text
    async with runtime.sessions() as session:
        conn = (await session.execute(select(StravaConnection))).scalar_one()
    assert conn.access_token_enc not in text and conn.refresh_token_enc not in text


async def test_latest_attempt_is_the_newest_by_start_time(desk, runtime, clock):
    await desk.issue_connect_link(ALICE, "test")
    async with runtime.sessions() as session, session.begin():
        user = (await session.execute(select(User))).scalar_one()
        for i, outcome in enumerate(["denied", "exchange_failed"]):
            started = clock.now() - timedelta(minutes=30 - i)
            session.add(OAuthAttempt(user_id=user.id, state_hash=f"s{i}", browser_hash="b", started_at=started,
                                     expires_at=started + timedelta(minutes=10), finished_at=started,
                                     outcome=outcome, reason=f"reason {i}"))
    diagnosis = await desk.diagnose(ALICE)
    assert diagnosis.facts["last_attempt"]["outcome"] == "exchange_failed"
    assert diagnosis.finding("authorization_failed") is not None


async def test_athlete_last_event_comes_from_events_when_the_column_is_empty(desk, alice, runtime, clock):
    async with runtime.sessions() as session, session.begin():
        # Only events Strava confirmed (processed) count as heard; newer unconfirmed ones do not.
        for i, (owner, age, state) in enumerate([(alice.athlete_id, 3, "processed"), (alice.athlete_id, 1, "processed"),
                                                 (999, 0.5, "processed"), (alice.athlete_id, 0.2, "ignored"),
                                                 (998, 0.1, "new")]):
            session.add(WebhookEvent(dedupe_key=f"k{i}", received_at=clock.now() - timedelta(hours=age),
                                     subscription_id=1, object_type="activity", object_id=i, aspect_type="create",
                                     owner_id=owner, event_time=0, updates="{}", state=state))
    facts = (await desk.diagnose(ALICE)).facts
    assert facts["last_event_at"] == (clock.now() - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert facts["app_last_event_at"] == (clock.now() - timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%SZ")


async def test_rate_limit_usage_counts_only_inside_the_current_window(desk, runtime, clock):
    # clock: 14:03 UTC. Observed at 13:58: the 15-minute usage is stale, the daily one still counts.
    # The diagnosis's subscription look asks the stand-in, whose answer updates the usage (fresh, 0),
    # racing the diagnosis's own read of it. Looked once first, it is cached (a minute on the clock),
    # and the row below is the only reading the diagnosis sees.
    await desk.diagnose("x@example.com")
    async with runtime.sessions() as session, session.begin():
        await session.execute(delete(RateLimitState))
        session.add(RateLimitState(budget="read", limit_15min=100, limit_daily=1000, usage_15min=95,
                                   usage_daily=500, observed_at=clock.now() - timedelta(minutes=5)))
    budgets = {(b["budget"], b["window"]): b for b in (await desk.diagnose("x@example.com")).facts["budgets"]}
    assert budgets[("read", "15min")]["usage"] is None
    assert budgets[("read", "15min")]["resets_at"] == "2026-11-27T14:15:00Z"
    assert budgets[("read", "daily")]["usage"] == 500
    assert budgets[("read", "daily")]["resets_at"] == "2026-11-28T00:00:00Z"
    assert budgets[("overall", "15min")] == {"budget": "overall", "window": "15min", "limit": 200, "usage": None,
                                             "resets_at": "2026-11-27T14:15:00Z"}


async def test_user_jobs_waiting_for_the_window(desk, alice, runtime, clock):
    async with runtime.sessions() as session, session.begin():
        for state, waiting in [("queued", "rate_limit"), ("queued", None), ("done", "rate_limit")]:
            session.add(Job(kind="fetch_activity", payload="{}", run_after=clock.now() + timedelta(minutes=12),
                            state=state, waiting_for=waiting, user_id=alice.user_id, created_at=clock.now()))
    diagnosis = await desk.diagnose(ALICE)
    assert diagnosis.facts["user_jobs_queued"] == 3  # these two and the catch-up queued by the Connect
    assert diagnosis.facts["user_jobs_waiting_for_window"] == 1
    assert diagnosis.facts["next_window_at"] == "2026-11-27T14:15:00Z"
    assert diagnosis.finding("rate_limited") is not None


async def test_subscription_look_is_cached_for_a_minute_on_the_clock(desk, runtime, standin, clock):
    await desk.diagnose("x@example.com")
    await desk.diagnose("x@example.com")
    await SupportDesk(runtime).diagnose("y@example.com")  # another desk of the same runtime shares it
    assert standin.count_calls("GET", "/api/v3/push_subscriptions") == 1
    clock.advance(59)
    await desk.diagnose("x@example.com")
    assert standin.count_calls("GET", "/api/v3/push_subscriptions") == 1
    clock.advance(2)
    await desk.diagnose("x@example.com")
    assert standin.count_calls("GET", "/api/v3/push_subscriptions") == 2
    desk.forget_subscription_look()
    await desk.diagnose("x@example.com")
    assert standin.count_calls("GET", "/api/v3/push_subscriptions") == 3


async def test_strava_error_on_the_live_look_is_recorded_not_raised(desk, standin):
    standin.fail_next("/api/v3/push_subscriptions", 503)
    diagnosis = await desk.diagnose("x@example.com")
    sub = diagnosis.facts["subscription"]
    assert sub["checked"] is False and "503" in sub["check_error"]
    assert "webhook_missing" not in diagnosis.ids


async def test_no_subscription_at_strava_is_seen(desk, standin):
    diagnosis = await desk.diagnose("x@example.com")
    sub = diagnosis.facts["subscription"]
    assert sub["checked"] is True and sub["exists"] is False
    assert "webhook_missing" in diagnosis.ids


async def test_a_new_installation_hears_the_subscription_is_not_made_yet_and_later_that_it_is_missing(
        desk, runtime, standin, clock):
    """Nobody connected and no registration ever tried (a fresh sandbox): the subscription is made
    after the first Connect, so its absence is a note, not an error. Once anybody connected (and a
    registration was made), the same absence is an error again."""
    first = (await desk.diagnose("x@example.com")).finding("webhook_missing")
    assert first is not None and first.severity == "info" and "not created yet" in first.title
    await connect_directly(runtime, standin, "runner@example.com")
    clock.advance(31)  # the count of connected athletes is reused for 30 s
    desk.forget_subscription_look()
    later = (await SupportDesk(runtime).diagnose("x@example.com")).finding("webhook_missing")
    assert later is not None and later.severity == "error", later


async def test_without_strava_configuration_diagnosis_degrades_with_a_note(database_url, clock, runtime):
    settings = make_settings(database_url)  # no Strava credentials
    rt = await open_runtime(settings, clock)
    try:
        diagnosis = await SupportDesk(rt).diagnose("x@example.com")
        assert diagnosis.facts["strava_configured"] is False
        assert diagnosis.facts["subscription"]["note"] == "Strava is not configured"
        assert subscription_cache(rt).belongs_to(rt)
    finally:
        await rt.close()


async def test_capacity_and_thresholds_come_from_settings(database_url, clock, runtime, standin):
    settings = make_settings(database_url, standin).replaced(strava_athlete_capacity=3,
                                   rate_limit_warn_pct=50, webhook_silent_days=3)
    rt = await open_runtime(settings, clock)
    try:
        facts = (await SupportDesk(rt).diagnose("x@example.com")).facts
        assert facts["app_athlete_capacity"] == 3
        assert facts["thresholds"]["rate_limit_warn_pct"] == 50
        assert facts["thresholds"]["webhook_silent_days"] == 3
    finally:
        await rt.close()


async def test_an_unknown_refresh_error_kind_still_counts_as_a_refresh_problem(desk, alice, runtime, clock):
    async with runtime.sessions() as session, session.begin():
        conn = await session.get(StravaConnection, alice.id)
        conn.last_refresh_error_kind = "something_new"
        conn.last_refresh_error = "HTTP 502: odd"
        conn.last_refresh_error_at = clock.now()
        conn.refresh_failures = 2
    facts = (await desk.diagnose(ALICE)).facts
    assert facts["last_refresh_error_kind"] == RefreshErrorKind.TRANSIENT


async def test_connected_athlete_count_is_reused_for_30_seconds(desk, alice, runtime, clock):
    assert (await desk.diagnose(ALICE)).facts["connected_athletes"] == 1
    async with runtime.sessions() as session, session.begin():
        session.add(User(id=99, email="z@example.com", email_normalized="z@example.com", created_at=clock.now()))
        session.add(StravaConnection(user_id=99, athlete_id=4242, status="connected", refresh_failures=0))
    assert (await desk.diagnose(ALICE)).facts["connected_athletes"] == 1
    clock.advance(30)
    assert (await desk.diagnose(ALICE)).facts["connected_athletes"] == 2
