"""Nothing Strava announces is lost because of when it arrives (issue 9, kind 2).

An event that arrives while FitGlue cannot act on it (before the callback stored the tokens, while
the connection is broken) is ignored then; every successful Connect queues a catch-up that lists
the athlete's activities again, so the activity is fetched after all.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from service.background.job_handlers import run_pending
from service.connections.refresh import refresh_connection
from service.db.models import ActivitySummary, Job, StravaConnection
from service.desk.support_desk import SupportDesk
from tests.flows import decide_at_strava, press_connect
from tests.webhook_support import all_events, subscribed_service
from troubleshooting.vocabulary import ConnectionStatus, RefreshErrorKind

EMAIL = "dana@example.com"
LIST = "/api/v3/athlete/activities"


@pytest.fixture
async def client(aiohttp_client, runtime):
    """Our app on a real port with the stand-in's push subscription pointing at it."""
    return await subscribed_service(aiohttp_client, runtime)


async def new_link(runtime) -> str:
    return (await SupportDesk(runtime).issue_connect_link(EMAIL, "test")).url


async def approve_at_strava(client, link: str, athlete: int) -> dict[str, str]:
    """The user presses Connect and approves at Strava; the callback query, not yet delivered."""
    return await decide_at_strava(await press_connect(client, link), athlete_id=athlete)


async def deliver_callback(client, query: dict[str, str]) -> None:
    response = await client.get("/oauth/strava/callback", params=query)
    assert response.status == 200, await response.text()


async def stored_names(runtime) -> dict[int, str | None]:
    async with runtime.sessions() as session:
        return dict((await session.execute(select(ActivitySummary.id, ActivitySummary.name))).all())


async def connection(runtime) -> StravaConnection:
    async with runtime.sessions() as session:
        return (await session.execute(select(StravaConnection))).scalar_one()


async def test_an_event_that_arrives_before_the_callback_is_caught_up_after_it(client, runtime, standin):
    athlete = standin.add_athlete()
    query = await approve_at_strava(client, await new_link(runtime), athlete)
    # Strava pushes the create before our callback has stored the tokens.
    activity = await standin.create_activity_and_notify(athlete, name="Dawn Patrol")
    assert standin.deliveries[-1].status == 200
    await run_pending(runtime)
    [event] = await all_events(runtime)
    assert event.state == "ignored" and "no FitGlue user" in event.error
    assert standin.count_calls("GET", LIST) == 0

    await deliver_callback(client, query)
    async with runtime.sessions() as session:
        [job] = (await session.execute(select(Job).where(Job.kind == "catch_up"))).scalars().all()
    assert job.priority == 50  # background work, inside the rate-limit budget
    await run_pending(runtime)

    assert standin.count_calls("GET", LIST) == 2  # one page, then the empty one
    assert await stored_names(runtime) == {activity: "Dawn Patrol"}
    async with runtime.sessions() as session:
        assert (await session.get(ActivitySummary, activity)).athlete_id == athlete


async def test_a_callback_that_never_came_is_caught_up_by_a_later_connect(client, runtime, standin, clock):
    athlete = standin.add_athlete()
    link = await new_link(runtime)
    await approve_at_strava(client, link, athlete)  # ...and the browser never comes back
    activity = await standin.create_activity_and_notify(athlete, name="Lost Ride")
    await run_pending(runtime)
    assert [e.state for e in await all_events(runtime)] == ["ignored"]

    # Two days later (longer than the catch-up look-back) the user tries again, with the same link.
    clock.advance(days=2)
    await deliver_callback(client, await approve_at_strava(client, link, athlete))
    await run_pending(runtime)
    assert await stored_names(runtime) == {activity: "Lost Ride"}


async def break_connection(runtime, standin, athlete: int, how: str) -> None:
    if how == ConnectionStatus.NEEDS_REAUTH:
        standin.state.revoke(athlete)  # the grant dies at Strava without an event...
        result = await refresh_connection(runtime, (await connection(runtime)).id, force=True)  # ...we notice
        assert result.error_kind == RefreshErrorKind.GRANT_DEAD
    else:
        standin.revoke_athlete(athlete)  # "Revoke Access": Strava pushes the deauthorization
        await standin.wait_for_deliveries()
        await run_pending(runtime)
    assert (await connection(runtime)).status == how


@pytest.mark.parametrize("how", [ConnectionStatus.NEEDS_REAUTH, ConnectionStatus.REVOKED])
async def test_reconnecting_after_a_broken_connection_catches_up(client, runtime, standin, clock, how):
    athlete = standin.add_athlete()
    await deliver_callback(client, await approve_at_strava(client, await new_link(runtime), athlete))
    await run_pending(runtime)
    await break_connection(runtime, standin, athlete, how)

    clock.advance(days=1)
    while_away = standin.add_activity(athlete, name="While away")  # no grant: Strava announces nothing
    clock.advance(days=1)
    query = await approve_at_strava(client, await new_link(runtime), athlete)
    announced = await standin.create_activity_and_notify(athlete, name="Announced too early")
    await run_pending(runtime)
    assert (await all_events(runtime))[-1].error == f"the connection is {how}"

    await deliver_callback(client, query)
    await run_pending(runtime)
    assert await stored_names(runtime) == {while_away: "While away", announced: "Announced too early"}


async def test_a_connect_without_activity_read_queues_no_catch_up(client, runtime, standin):
    athlete = standin.add_athlete()
    authorize_url = await press_connect(client, await new_link(runtime))
    query = await decide_at_strava(authorize_url, athlete_id=athlete, granted=["read", "activity:write"])
    await deliver_callback(client, query)
    async with runtime.sessions() as session:
        assert (await session.execute(select(Job).where(Job.kind == "catch_up"))).scalars().all() == []
