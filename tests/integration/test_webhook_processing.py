"""Events pushed by the stand-in (a Strava-compatible server) to our real endpoint, then processed
by the worker: activities fetched once however often redelivered, deauthorizations believed only
when Strava confirms them."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from service.app.factory import build_app
from service.background.job_handlers import run_pending
from service.db.models import ActivitySummary
from service.desk.support_desk import SupportDesk
from standin import StravaStandin
from tests.webhook_support import (
    all_events,
    connect_directly,
    connection,
    point_public_url_at,
    subscribed_service,
)
from troubleshooting.vocabulary import ConnectionStatus


@pytest.fixture
async def client(aiohttp_client, runtime):
    return await subscribed_service(aiohttp_client, runtime)


async def summary(runtime, activity_id) -> ActivitySummary | None:
    async with runtime.sessions() as session:
        return await session.get(ActivitySummary, activity_id)


async def test_activity_is_fetched_once_however_often_the_event_is_redelivered(client, runtime, standin):
    athlete = await connect_directly(runtime, standin)
    activity = await standin.create_activity_and_notify(athlete, name="Lunch Ride", sport_type="Ride")
    created = standin.deliveries[-1].event
    assert standin.deliveries[-1].status == 200
    for _ in range(2):  # Strava's retries carry the very same body
        assert await standin.push_event(created) == 200
    await run_pending(runtime)
    await standin.push_event(created)  # a late redelivery after processing
    await run_pending(runtime)

    assert standin.count_calls("GET", f"/api/v3/activities/{activity}") == 1
    row = await summary(runtime, activity)
    assert row is not None and (row.name, row.sport_type, row.athlete_id) == ("Lunch Ride", "Ride", athlete)
    assert row.start_date is not None
    events = await all_events(runtime)
    assert [e.state for e in events] == ["processed"]
    conn = await connection(runtime, athlete)
    assert conn.last_event_at == events[0].received_at
    status = await SupportDesk(runtime).webhooks.webhook_status()
    assert status.last_event_at == events[0].received_at


async def test_update_refetches_and_delete_is_recorded(client, runtime, standin):
    athlete = await connect_directly(runtime, standin)
    activity = await standin.create_activity_and_notify(athlete, name="Run")
    await run_pending(runtime)
    standin.state.activities[activity].name = "Evening Run"
    await standin.push_event(standin.event("update", "activity", activity, athlete, {"title": "Evening Run"}))
    await run_pending(runtime)
    assert (await summary(runtime, activity)).name == "Evening Run"
    del standin.state.activities[activity]  # the athlete deletes it; Strava answers 404 from now on
    await standin.push_event(standin.event("delete", "activity", activity, athlete, {}))
    await run_pending(runtime)
    assert (await summary(runtime, activity)).deleted_at == runtime.clock.now()


async def test_event_for_an_unknown_athlete_is_ignored(client, runtime, standin):
    stranger = standin.add_athlete()
    await standin.push_event(standin.event("create", "activity", 42, stranger, {}))
    await run_pending(runtime)
    [event] = await all_events(runtime)
    assert event.state == "ignored" and "no FitGlue user" in event.error
    assert standin.count_calls("GET", "/api/v3/activities") == 0


async def test_confirmed_deauthorization_marks_revoked_and_drops_tokens(client, runtime, standin):
    athlete = await connect_directly(runtime, standin)
    standin.revoke_athlete(athlete)  # the athlete presses "Revoke Access"; Strava pushes the event
    await standin.wait_for_deliveries()
    assert standin.deliveries[-1].status == 200
    await run_pending(runtime)
    conn = await connection(runtime, athlete)
    assert conn.status == ConnectionStatus.REVOKED
    assert conn.revoked_at == runtime.clock.now()
    assert conn.access_token_enc is None and conn.refresh_token_enc is None
    [event] = await all_events(runtime)
    assert event.state == "processed" and "confirmed" in event.error


async def test_forged_deauthorization_changes_nothing(client, runtime, standin: StravaStandin):
    athlete = await connect_directly(runtime, standin)
    before = await connection(runtime, athlete)
    # Same shape as Strava's, and even our subscription id — but the grant is alive.
    forged = standin.event("update", "athlete", athlete, athlete, {"authorized": "false"})
    response = await client.post("/webhooks/strava", json=forged)
    assert response.status == 200
    await run_pending(runtime)
    after = await connection(runtime, athlete)
    assert after.status == ConnectionStatus.CONNECTED and after.revoked_at is None
    assert after.refresh_token_enc is not None and after.access_token_enc is not None
    assert standin.count_calls("POST", "/oauth/token") >= 1  # it asked Strava before deciding
    assert before.status == after.status
    [event] = await all_events(runtime)
    assert event.state == "ignored" and "not confirmed" in event.error


async def test_deauthorization_waits_when_strava_cannot_answer(client, runtime, standin):
    athlete = await connect_directly(runtime, standin)
    standin.fail_next("/oauth/token", 503)
    await client.post("/webhooks/strava", json=standin.event("update", "athlete", athlete, athlete,
                                                             {"authorized": "false"}))
    await run_pending(runtime)
    assert (await connection(runtime, athlete)).status == ConnectionStatus.CONNECTED  # a 503 proves nothing
    runtime.clock.advance(minutes=5)
    standin.revoke_athlete(athlete)
    await standin.wait_for_deliveries()
    await run_pending(runtime)
    assert (await connection(runtime, athlete)).status == ConnectionStatus.REVOKED


async def test_worker_in_the_service_picks_new_events_up_within_a_second(aiohttp_client, runtime, standin):
    client = await aiohttp_client(build_app(runtime, background=True))
    point_public_url_at(runtime, client)
    assert (await SupportDesk(runtime).webhooks.reregister_webhook("test")).ok
    athlete = await connect_directly(runtime, standin)
    loop = asyncio.get_running_loop()
    started = loop.time()
    activity = await standin.create_activity_and_notify(athlete)
    while await summary(runtime, activity) is None:
        assert loop.time() - started < 1.5, "the worker did not take the event up within about a second"
        await asyncio.sleep(0.02)


async def test_activity_events_before_any_subscription_lookup_are_checked_against_strava(
        aiohttp_client, runtime, standin):
    client = await aiohttp_client(build_app(runtime, background=False))
    point_public_url_at(runtime, client)
    athlete = await connect_directly(runtime, standin)
    # The subscription exists at Strava, but this process never registered or looked it up.
    await standin.create_subscription(runtime.settings.webhook_callback_url,
                                      runtime.settings.strava_webhook_verify_token.get_secret_value())
    activity = await standin.create_activity_and_notify(athlete)
    bogus = standin.event("create", "activity", activity + 1, athlete, {}) | {"subscription_id": 7}
    assert await client.post("/webhooks/strava", json=bogus) is not None
    await run_pending(runtime)
    states = {e.object_id: e.state for e in await all_events(runtime)}
    assert states == {activity: "processed", activity + 1: "ignored"}
    async with runtime.sessions() as session:
        assert (await session.execute(select(ActivitySummary.id))).scalars().all() == [activity]
