"""When a grant ends, the athlete's Strava data is deleted, as Strava's API Agreement requires
(issue 9, kind 14): a confirmed deauthorization at once and in the same transaction, `disconnect`
at once, a grant found dead by the sweep after FITGLUE_DEAD_GRANT_RETENTION_DAYS. The connection
row and its status stay for the diagnosis. (`forget`: tests/integration/test_erasure.py.)"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from service.background.job_handlers import run_pending
from service.background.scheduler import retention_sweep
from service.background.webhooks import activity_store, processing
from service.core.runtime import Runtime
from service.db.models import ActivitySummary, Job, WebhookEvent
from service.desk.support_desk import SupportDesk
from service.queue import enqueue
from standin import StravaStandin
from tests.flows import connect
from tests.webhook_support import (
    all_events,
    connect_directly,
    connection,
    subscribed_service,
)
from troubleshooting.vocabulary import ConnectionStatus


@pytest.fixture
async def client(aiohttp_client, runtime):
    return await subscribed_service(aiohttp_client, runtime)


async def strava_rows(runtime: Runtime, athlete: int) -> dict[str, int]:
    """What we hold of this (still named) athlete from Strava: summaries, activity events (titles),
    and the user's queued work."""
    user_id = (await connection(runtime, athlete)).user_id
    async with runtime.sessions() as session:
        summaries = (await session.execute(select(func.count()).select_from(ActivitySummary).where(
            ActivitySummary.athlete_id == athlete))).scalar_one()
        events = (await session.execute(select(func.count()).select_from(WebhookEvent).where(
            WebhookEvent.owner_id == athlete, WebhookEvent.object_type == "activity"))).scalar_one()
        queued = (await session.execute(select(func.count()).select_from(Job).where(
            Job.state == "queued", Job.kind != "webhook_event", Job.user_id == user_id))).scalar_one()
    return {"activity_summaries": summaries, "activity_events": events, "queued_jobs": queued}


async def athlete_with_data(runtime: Runtime, standin: StravaStandin, email: str) -> int:
    """A connected athlete with two fetched activities, a renamed one (its title is in the stored
    event) and a queued catch-up job."""
    athlete = await connect_directly(runtime, standin, email)
    first = await standin.create_activity_and_notify(athlete, name="Morning Run")
    await standin.create_activity_and_notify(athlete, name="Lunch Ride", sport_type="Ride")
    await run_pending(runtime)
    standin.state.activities[first].name = "Hill repeats with Sam"
    await standin.push_event(standin.event("update", "activity", first, athlete, {"title": "Hill repeats with Sam"}))
    await run_pending(runtime)
    conn = await connection(runtime, athlete)
    async with runtime.write() as session:
        await enqueue(session, "catch_up", {"connection_id": conn.id, "after": 0, "page": 1}, runtime.clock.now(),
                      user_id=conn.user_id, run_after=runtime.clock.now() + timedelta(days=1))
    assert await strava_rows(runtime, athlete) == {"activity_summaries": 2, "activity_events": 3, "queued_jobs": 1}
    return athlete


NOTHING = {"activity_summaries": 0, "activity_events": 0, "queued_jobs": 0}


async def test_confirmed_deauthorization_deletes_the_athletes_strava_data(client, runtime, standin):
    """The issue's example: access removed in Strava's settings; the deauthorization is confirmed."""
    athlete = await athlete_with_data(runtime, standin, "alice@example.com")
    other = await athlete_with_data(runtime, standin, "bob@example.com")
    standin.revoke_athlete(athlete)
    await standin.wait_for_deliveries()
    await run_pending(runtime)

    conn = await connection(runtime, athlete)
    assert conn.status == ConnectionStatus.REVOKED and conn.athlete_id == athlete  # kept: the diagnosis needs it
    assert await strava_rows(runtime, athlete) == NOTHING
    [notice] = [e for e in await all_events(runtime) if e.owner_id == athlete]  # the notice: ids only
    assert (notice.object_type, notice.state, notice.updates) == ("athlete", "processed", '{"authorized":"false"}')
    assert (await SupportDesk(runtime).diagnose("alice@example.com")).status == ConnectionStatus.REVOKED
    assert await strava_rows(runtime, other) == {"activity_summaries": 2, "activity_events": 3, "queued_jobs": 1}


async def test_revocation_and_deletion_are_one_transaction(client, runtime, standin, monkeypatch):
    athlete = await athlete_with_data(runtime, standin, "alice@example.com")

    async def broken(*args, **kwargs):
        raise RuntimeError("database went away mid-deletion")

    monkeypatch.setattr(activity_store, "delete_strava_data", broken)
    standin.revoke_athlete(athlete)
    await standin.wait_for_deliveries()
    await run_pending(runtime)
    # Not revoked without its data deleted: the refresh found the grant dead, nothing more.
    assert (await connection(runtime, athlete)).status == ConnectionStatus.NEEDS_REAUTH
    assert (await strava_rows(runtime, athlete))["activity_summaries"] == 2

    monkeypatch.undo()
    runtime.clock.advance(hours=2)  # the event's job retries after its backoff
    await run_pending(runtime)
    assert (await connection(runtime, athlete)).status == ConnectionStatus.REVOKED
    assert await strava_rows(runtime, athlete) == NOTHING


async def test_disconnect_deletes_the_athletes_strava_data_at_once(client, runtime, standin):
    athlete = await athlete_with_data(runtime, standin, "alice@example.com")
    other = await athlete_with_data(runtime, standin, "bob@example.com")
    conn_id = (await connection(runtime, athlete)).id
    result = await SupportDesk(runtime).disconnect("alice@example.com", "cli:agent")
    assert result.deauthorized and result.status == ConnectionStatus.NOT_CONNECTED
    async with runtime.sessions() as session:
        assert (await session.execute(select(func.count()).select_from(ActivitySummary).where(
            ActivitySummary.athlete_id == athlete))).scalar_one() == 0
        events = (await session.execute(select(WebhookEvent.object_type).where(WebhookEvent.owner_id == athlete))
                  ).scalars().all()
        jobs = (await session.execute(select(Job.payload).where(Job.state == "queued"))).scalars().all()
    assert events == []
    assert conn_id not in [json.loads(p).get("connection_id") for p in jobs]
    assert await strava_rows(runtime, other) == {"activity_summaries": 2, "activity_events": 3, "queued_jobs": 1}


async def test_a_grant_found_dead_loses_its_data_after_the_dead_grant_retention(client, runtime, standin, clock):
    athlete = await athlete_with_data(runtime, standin, "alice@example.com")
    standin.state.revoke(athlete)  # gone at Strava, and no event told us
    refreshed = await SupportDesk(runtime).refresh_now("alice@example.com", "cli:agent")
    assert refreshed.status == ConnectionStatus.NEEDS_REAUTH

    clock.advance(days=runtime.settings.dead_grant_retention_days, seconds=-60)
    await retention_sweep(runtime)  # the user may still re-authorize: nothing goes yet
    assert (await strava_rows(runtime, athlete))["activity_summaries"] == 2
    clock.advance(seconds=120)
    await retention_sweep(runtime)
    assert await strava_rows(runtime, athlete) == NOTHING
    conn = await connection(runtime, athlete)
    assert conn.status == ConnectionStatus.NEEDS_REAUTH and conn.athlete_id == athlete


async def test_a_grant_renewed_within_the_retention_keeps_its_data(client, runtime, standin, clock):
    athlete = await athlete_with_data(runtime, standin, "alice@example.com")
    standin.state.revoke(athlete)
    await SupportDesk(runtime).refresh_now("alice@example.com", "cli:agent")
    clock.advance(days=1)
    link = (await SupportDesk(runtime).issue_connect_link("alice@example.com", "cli:agent")).url
    assert (await connect(client, link, athlete_id=athlete))[0] == 200  # the user re-authorized
    clock.advance(days=runtime.settings.dead_grant_retention_days * 2)
    await retention_sweep(runtime)
    assert (await strava_rows(runtime, athlete))["activity_summaries"] == 2


async def test_summaries_of_an_athlete_no_connection_names_are_swept(client, runtime, standin):
    """E.g. a fetch that landed just after a disconnect freed the athlete id."""
    athlete = await athlete_with_data(runtime, standin, "alice@example.com")
    await SupportDesk(runtime).disconnect("alice@example.com", "cli:agent")
    await processing.upsert_summaries(runtime, [{"id": 999, "name": "Late", "athlete": {"id": athlete}}])
    await retention_sweep(runtime)
    async with runtime.sessions() as session:
        assert await session.get(ActivitySummary, 999) is None
