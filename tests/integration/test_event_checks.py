"""An unsigned event changes nothing until Strava confirms it (issue 9, kind 6).

- the event's claimed owner must match what we know;
- a delete is believed only when Strava answers 404 to the owner's token;
- an activity id Strava answered 404 for is not asked about again until the memo expires;
- what unconfirmed events may spend is capped per athlete and 15-minute window.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from service.background.job_handlers import run_pending
from service.db.models import ActivitySummary
from service.desk.support_desk import SupportDesk
from service.ratelimit.windows import next_quarter
from tests.webhook_support import (
    all_events,
    all_jobs,
    connect_directly,
    connection,
    subscribed_service,
)
from troubleshooting.vocabulary import ConnectionStatus

GET_ACTIVITY = "/api/v3/activities/"


@pytest.fixture
async def client(aiohttp_client, runtime):
    return await subscribed_service(aiohttp_client, runtime)


async def summary(runtime, activity_id) -> ActivitySummary | None:
    async with runtime.sessions() as session:
        return await session.get(ActivitySummary, activity_id)


async def summaries(runtime) -> list[int]:
    async with runtime.sessions() as session:
        return list((await session.execute(select(ActivitySummary.id).order_by(ActivitySummary.id))).scalars())


async def post(client, event) -> None:
    response = await client.post("/webhooks/strava", json=event)
    assert response.status == 200, await response.text()


async def last_event(runtime):
    return (await all_events(runtime))[-1]


@pytest.fixture
async def two_athletes(client, runtime, standin):
    """X and Y connected; Y's activity stored from Strava's own answer."""
    x = await connect_directly(runtime, standin, "x@example.com")
    y = await connect_directly(runtime, standin, "y@example.com")
    activity = await standin.create_activity_and_notify(y, name="Y's ride")
    await run_pending(runtime)
    assert (await summary(runtime, activity)).athlete_id == y
    return x, y, activity


async def test_a_forged_delete_naming_another_athlete_changes_nothing(client, runtime, standin, two_athletes):
    x, y, activity = two_athletes
    calls = standin.count_calls("GET", GET_ACTIVITY)
    await post(client, standin.event("delete", "activity", activity, x, {}))
    await run_pending(runtime)
    row = await summary(runtime, activity)
    assert (row.deleted_at, row.athlete_id, row.name) == (None, y, "Y's ride")
    event = await last_event(runtime)
    assert event.state == "ignored" and "belongs to another athlete" in event.error
    assert standin.count_calls("GET", GET_ACTIVITY) == calls  # refused without asking Strava


@pytest.mark.parametrize("aspect", ["create", "update"])
async def test_a_forged_create_or_update_naming_another_athlete_changes_nothing(
        client, runtime, standin, two_athletes, aspect):
    x, y, activity = two_athletes
    calls = standin.count_calls("GET", GET_ACTIVITY)
    await post(client, standin.event(aspect, "activity", activity, x, {"title": "pwned"}))
    await run_pending(runtime)
    assert (await summary(runtime, activity)).athlete_id == y
    assert (await last_event(runtime)).state == "ignored"
    assert standin.count_calls("GET", GET_ACTIVITY) == calls


async def test_a_delete_is_believed_only_when_strava_answers_404(client, runtime, standin, two_athletes, clock):
    _x, y, activity = two_athletes
    await post(client, standin.event("delete", "activity", activity, y, {}))  # forged: it still exists
    await run_pending(runtime)
    assert (await summary(runtime, activity)).deleted_at is None
    event = await last_event(runtime)
    assert event.state == "ignored" and "not confirmed" in event.error
    assert standin.count_calls("GET", f"{GET_ACTIVITY}{activity}") == 2  # the create's fetch and this check

    clock.advance(minutes=1)
    del standin.state.activities[activity]  # now Y really deletes it
    await post(client, standin.event("delete", "activity", activity, y, {}))
    await run_pending(runtime)
    assert (await summary(runtime, activity)).deleted_at == clock.now()
    assert (await last_event(runtime)).state == "processed"


async def test_a_delete_of_an_activity_we_never_stored_stores_nothing(client, runtime, standin):
    athlete = await connect_directly(runtime, standin)
    await post(client, standin.event("delete", "activity", 424242, athlete, {}))
    await run_pending(runtime)
    assert await summaries(runtime) == []
    assert standin.count_calls("GET", GET_ACTIVITY) == 0


async def test_sixty_forged_creates_cost_a_bounded_number_of_calls(client, runtime, standin, clock):
    # The per-athlete cap alone (the pending bound has its own tests below).
    runtime.settings = runtime.settings.replaced(pending_events_per_athlete=1000)
    victim = await connect_directly(runtime, standin, "victim@example.com")
    bystander = await connect_directly(runtime, standin, "bystander@example.com")
    cap = runtime.settings.unconfirmed_calls_per_athlete
    forged = [7_000_000 + i for i in range(60)]
    for activity_id in forged:
        await post(client, standin.event("create", "activity", activity_id, victim, {}))
    await run_pending(runtime)
    assert standin.count_calls("GET", GET_ACTIVITY) == cap
    waiting = [j for j in await all_jobs(runtime) if j.state == "queued"]
    assert len(waiting) == 60 - cap
    assert {(j.waiting_for, j.attempts, j.run_after) for j in waiting} == {
        ("event_cap", 0, next_quarter(clock.now()))}

    # Another athlete's real activity is not held back by the flood.
    real = await standin.create_activity_and_notify(bystander, name="Real one")
    await run_pending(runtime)
    assert (await summary(runtime, real)).name == "Real one"

    # Nothing is dropped: the rest is checked window by window, at most `cap` calls in each.
    for _ in range(60 // cap):
        before = standin.count_calls("GET", GET_ACTIVITY)
        clock.advance(minutes=15)
        await run_pending(runtime)
        assert standin.count_calls("GET", GET_ACTIVITY) - before <= cap
    assert [j for j in await all_jobs(runtime) if j.state != "done"] == []
    assert sum(standin.count_calls("GET", f"{GET_ACTIVITY}{a}") for a in forged) == 60

    # Each forged id costs at most one call, however often it is sent again.
    clock.advance(minutes=15)
    calls = standin.count_calls("GET", GET_ACTIVITY)
    for activity_id in forged:
        await post(client, standin.event("create", "activity", activity_id, victim, {}))
    await run_pending(runtime)
    assert standin.count_calls("GET", GET_ACTIVITY) == calls
    assert {e.state for e in (await all_events(runtime))[-60:]} == {"ignored"}
    assert await summaries(runtime) == [real]


async def test_the_cap_is_a_setting(client, runtime, standin):
    runtime.settings = runtime.settings.replaced(unconfirmed_calls_per_athlete=3)
    athlete = await connect_directly(runtime, standin)
    for activity_id in range(100, 110):
        await post(client, standin.event("create", "activity", activity_id, athlete, {}))
    await run_pending(runtime)
    assert standin.count_calls("GET", GET_ACTIVITY) == 3


async def test_an_activity_that_turns_public_again_is_fetched_once_the_404_memo_expires(
        client, runtime, standin, clock):
    # With only activity:read, Strava sends a create when an Only You activity becomes visible.
    athlete = await connect_directly(runtime, standin, granted=["read", "activity:read", "activity:write"])
    activity = standin.add_activity(athlete, name="Hidden", private=True)
    await post(client, standin.event("create", "activity", activity, athlete, {}))
    await run_pending(runtime)
    assert await summaries(runtime) == [] and standin.count_calls("GET", GET_ACTIVITY) == 1

    standin.state.activities[activity].private = False
    clock.advance(hours=1)
    await post(client, standin.event("create", "activity", activity, athlete, {}))
    await run_pending(runtime)
    assert standin.count_calls("GET", GET_ACTIVITY) == 1  # remembered: not asked again
    assert "not asked again before" in (await last_event(runtime)).error

    clock.advance(seconds=runtime.settings.not_found_memo_s)
    await post(client, standin.event("create", "activity", activity, athlete, {}))
    await run_pending(runtime)
    assert standin.count_calls("GET", GET_ACTIVITY) == 2
    assert (await summary(runtime, activity)).name == "Hidden"


async def test_athlete_events_other_than_a_deauthorization_change_nothing(client, runtime, standin):
    athlete = await connect_directly(runtime, standin)
    other = await connect_directly(runtime, standin, "other@example.com")
    tokens = standin.count_calls("POST", "/oauth/token")
    await post(client, standin.event("update", "athlete", athlete, athlete, {"title": "x"}))
    # A deauthorization whose object is another athlete than its owner is not a Strava event.
    await post(client, standin.event("update", "athlete", other, athlete, {"authorized": "false"}))
    await run_pending(runtime)
    assert [e.state for e in await all_events(runtime)] == ["ignored", "ignored"]
    assert standin.count_calls("POST", "/oauth/token") == tokens
    for athlete_id in (athlete, other):
        assert (await connection(runtime, athlete_id)).status == ConnectionStatus.CONNECTED


async def test_forged_deauthorizations_are_checked_within_the_cap(client, runtime, standin, clock):
    athlete = await connect_directly(runtime, standin)
    cap = runtime.settings.unconfirmed_calls_per_athlete
    tokens = standin.count_calls("POST", "/oauth/token")
    for n in range(cap + 5):
        forged = standin.event("update", "athlete", athlete, athlete, {"authorized": "false"})
        await post(client, forged | {"event_time": forged["event_time"] + n})
    await run_pending(runtime)
    assert standin.count_calls("POST", "/oauth/token") - tokens == cap
    assert (await connection(runtime, athlete)).status == ConnectionStatus.CONNECTED
    # A real revocation in the next window is still believed.
    clock.advance(minutes=15)
    standin.revoke_athlete(athlete)
    await standin.wait_for_deliveries()
    for _ in range(3):
        await run_pending(runtime)
        clock.advance(minutes=15)
    assert (await connection(runtime, athlete)).status == ConnectionStatus.REVOKED


async def test_a_forged_event_does_not_move_where_a_webhook_repair_catches_up_from(client, runtime, standin, clock):
    athlete = await connect_directly(runtime, standin)
    standin.delete_subscription(str(standin.subscription["id"]))  # the subscription is lost at Strava
    clock.advance(hours=1)
    missed = standin.add_activity(athlete, name="Missed while unsubscribed")
    clock.advance(days=3)  # well past the catch-up look-back
    forged = standin.event("create", "activity", 9_999_999, athlete, {}) | {"subscription_id": 131300}
    await post(client, forged)  # still names the subscription id we know
    await run_pending(runtime)
    assert (await last_event(runtime)).state == "ignored"

    report = await SupportDesk(runtime).webhooks.reregister_webhook("test")
    assert report.catch_up_queued == 1
    await run_pending(runtime)
    assert (await summary(runtime, missed)).name == "Missed while unsubscribed"


async def test_memos_and_call_counts_are_pruned_and_forgotten(client, runtime, standin, clock):
    from service.background.scheduler import retention_sweep
    from service.db.models import ActivityNotFound, UnconfirmedEventCalls

    async def rows(model) -> int:
        async with runtime.sessions() as session:
            return len((await session.execute(select(model))).scalars().all())

    athlete = await connect_directly(runtime, standin)
    other = await connect_directly(runtime, standin, "other@example.com")
    for owner, activity_id in ((athlete, 5_000_001), (other, 5_000_002)):
        await post(client, standin.event("create", "activity", activity_id, owner, {}))
    await run_pending(runtime)
    # Counts: one per athlete, and the app-wide one (athlete id 0).
    assert (await rows(ActivityNotFound), await rows(UnconfirmedEventCalls)) == (2, 3)

    await SupportDesk(runtime).forget("alice@example.com", "test")  # the first athlete's user
    assert (await rows(ActivityNotFound), await rows(UnconfirmedEventCalls)) == (1, 2)

    clock.advance(minutes=15)  # a new window: the old window's count goes
    await retention_sweep(runtime)
    assert (await rows(ActivityNotFound), await rows(UnconfirmedEventCalls)) == (1, 0)
    clock.advance(seconds=runtime.settings.not_found_memo_s)  # the memo has run out
    await retention_sweep(runtime)
    assert await rows(ActivityNotFound) == 0
