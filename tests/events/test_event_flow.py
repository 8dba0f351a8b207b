"""Issue 12, outbound events end to end against the Strava stand-in: connect; an activity created,
updated, then deleted as Strava confirmed; a revocation. Each step produces exactly the expected typed
event, in order, and the receiver verifies every signature with `standardwebhooks`."""

from __future__ import annotations

from sqlalchemy import func, select

from service.background.job_handlers import deliver_pending, run_pending
from service.connections.refresh import sweep_due
from service.db.models import OutboundEvent, StravaConnection
from service.desk.support_desk import SupportDesk
from tests.flows import connect
from tests.webhook_support import connect_directly, subscribed_service

EVENT_TYPES_NEVER_CARRY = ("access_token", "refresh_token", "secret")


async def step(runtime, receiver, expected: list[str]) -> list:
    """Run the queue, deliver, and return the events that arrived in this step."""
    before = len(receiver.accepted())
    await run_pending(runtime)
    await deliver_pending(runtime)
    arrived = receiver.accepted()[before:]
    assert [e.type for e in arrived] == expected
    return arrived


async def test_connect_activity_lifecycle_and_revocation_each_send_their_event(
        aiohttp_client, events_runtime, standin, receiver):
    runtime = events_runtime
    client = await subscribed_service(aiohttp_client, runtime)
    link = await SupportDesk(runtime).issue_connect_link("alice@example.com", "cli:agent")
    athlete = standin.add_athlete()
    status, _ = await connect(client, link.url, athlete_id=athlete)
    assert status == 200
    [connected] = await step(runtime, receiver, ["strava.connection.connected"])
    assert connected.data == {"email": "alice@example.com", "athlete_id": athlete, "status": "connected",
                              "granted_scopes": ["activity:read_all", "activity:write", "profile:read_all", "read"]}

    activity = await standin.create_activity_and_notify(athlete, name="Morning Run")
    [created] = await step(runtime, receiver, ["strava.activity.created"])
    assert created.data["activity"]["id"] == activity and created.data["activity"]["name"] == "Morning Run"
    assert created.data["email"] == "alice@example.com" and created.data["athlete_id"] == athlete

    standin.state.activities[activity].name = "Hill repeats"
    # The event's own fields are unsigned: a forged title must never be forwarded.
    await standin.push_event(standin.event("update", "activity", activity, athlete, {"title": "FORGED"}))
    [updated] = await step(runtime, receiver, ["strava.activity.updated"])
    assert updated.data["activity"]["name"] == "Hill repeats"
    assert "FORGED" not in str(updated.body)

    del standin.state.activities[activity]
    await standin.push_event(standin.event("delete", "activity", activity, athlete, {}))
    [deleted] = await step(runtime, receiver, ["strava.activity.deleted"])
    assert deleted.data["activity"] == {"id": activity}

    standin.revoke_athlete(athlete)
    await standin.wait_for_deliveries()
    [revoked] = await step(runtime, receiver, ["strava.connection.revoked"])
    assert revoked.data["status"] == "revoked" and revoked.data["athlete_id"] == athlete

    everything = receiver.received
    assert all(e.verified for e in everything), [e.error for e in everything if not e.verified]
    assert len({e.webhook_id for e in everything}) == len(everything)
    for event in everything:
        assert set(event.body) == {"type", "timestamp", "data"}
        assert not any(word in str(event.body).lower() for word in EVENT_TYPES_NEVER_CARRY)
    issued = standin.issued_tokens
    assert not any(token in str(e.body) for e in everything for token in issued)


async def test_a_forged_create_for_an_activity_strava_does_not_show_sends_nothing(
        aiohttp_client, events_runtime, standin, receiver):
    runtime = events_runtime
    await subscribed_service(aiohttp_client, runtime)
    athlete = await connect_directly(runtime, standin)
    await standin.push_event(standin.event("create", "activity", 987654, athlete, {}))
    await step(runtime, receiver, [])


async def test_a_reconnect_with_a_smaller_grant_announces_the_changed_permissions(
        aiohttp_client, events_runtime, standin, receiver):
    runtime = events_runtime
    client = await subscribed_service(aiohttp_client, runtime)
    desk = SupportDesk(runtime)
    athlete = standin.add_athlete()
    assert (await connect(client, (await desk.issue_connect_link("bo@example.com", "t")).url, athlete_id=athlete))[0] == 200
    await step(runtime, receiver, ["strava.connection.connected"])
    status, _ = await connect(client, (await desk.issue_connect_link("bo@example.com", "t")).url, athlete_id=athlete,
                              granted=["read", "activity:read_all"])
    assert status == 200
    _, changed = await step(runtime, receiver, ["strava.connection.connected", "strava.connection.permissions_changed"])
    assert changed.data["granted_scopes"] == ["activity:read_all", "read"]
    assert changed.data["previous_scopes"] == ["activity:read_all", "activity:write", "profile:read_all", "read"]


async def test_disconnect_and_forget_send_their_events_and_erase_the_earlier_ones(
        aiohttp_client, events_runtime, standin, receiver):
    runtime = events_runtime
    await subscribed_service(aiohttp_client, runtime)
    athlete = await connect_directly(runtime, standin, "cy@example.com")
    await standin.create_activity_and_notify(athlete, name="Evening Run")
    await step(runtime, receiver, ["strava.activity.created"])
    desk = SupportDesk(runtime)
    await desk.disconnect("cy@example.com", "cli:agent")
    [disconnected] = await step(runtime, receiver, ["strava.connection.disconnected"])
    assert disconnected.data["athlete_id"] == athlete and disconnected.data["status"] == "not_connected"
    async with runtime.sessions() as session:
        kinds = (await session.execute(select(OutboundEvent.type))).scalars().all()
    assert kinds == ["strava.connection.disconnected"]  # the delivered activity event went with the grant

    result = await desk.forget("cy@example.com", "cli:agent")
    [erased] = await step(runtime, receiver, ["fitglue.user.erased"])
    assert erased.data == {"athlete_id": None, "status": "unknown_user", "label": result.forgotten}


async def test_with_no_events_url_nothing_is_queued(aiohttp_client, runtime, standin):
    await subscribed_service(aiohttp_client, runtime)
    athlete = await connect_directly(runtime, standin)
    await standin.create_activity_and_notify(athlete)
    await run_pending(runtime)
    await SupportDesk(runtime).disconnect("alice@example.com", "t")
    async with runtime.sessions() as session:
        assert (await session.execute(select(func.count()).select_from(OutboundEvent))).scalar_one() == 0
        assert (await session.execute(select(StravaConnection.status))).scalar_one() == "not_connected"
    assert await deliver_pending(runtime) == 0


async def test_refreshes_that_fail_then_succeed_announce_the_recovery(events_runtime, standin, receiver, clock):
    runtime = events_runtime
    athlete = await connect_directly(runtime, standin)
    clock.advance(5 * 3600 + 60)  # the stand-in's token is now within the refresh margin
    standin.fail_next("/oauth/token", 503)
    assert (await sweep_due(runtime))[0].failed
    await step(runtime, receiver, [])  # a transient failure changes no status: nothing to announce
    clock.advance(61)
    assert (await sweep_due(runtime))[0].refreshed
    [recovered] = await step(runtime, receiver, ["strava.connection.recovered"])
    assert recovered.data["athlete_id"] == athlete and recovered.data["status"] == "connected"
    clock.advance(6 * 3600)
    assert (await sweep_due(runtime))[0].refreshed
    await step(runtime, receiver, [])  # a refresh that never failed is nothing new


async def test_a_grant_found_dead_announces_needs_reauth(events_runtime, standin, receiver, clock):
    runtime = events_runtime
    athlete = await connect_directly(runtime, standin)
    standin.state.revoke(athlete)  # access removed, and no push event told us
    clock.advance(5 * 3600 + 60)
    assert (await sweep_due(runtime))[0].status == "needs_reauth"
    [dead] = await step(runtime, receiver, ["strava.connection.needs_reauth"])
    assert dead.data == {"email": "alice@example.com", "athlete_id": athlete, "status": "needs_reauth",
                         "granted_scopes": ["activity:read_all", "activity:write", "profile:read_all", "read"]}


async def test_the_catch_up_after_a_connect_announces_each_activity_it_finds_once(
        aiohttp_client, events_runtime, standin, receiver):
    runtime = events_runtime
    client = await subscribed_service(aiohttp_client, runtime)
    athlete = standin.add_athlete()
    earlier = [standin.add_activity(athlete, name=f"Before connecting {i}") for i in range(3)]
    link = await SupportDesk(runtime).issue_connect_link("dee@example.com", "cli:agent")
    assert (await connect(client, link.url, athlete_id=athlete))[0] == 200
    arrived = await step(runtime, receiver, ["strava.connection.connected"] + ["strava.activity.created"] * 3)
    assert sorted(e.data["activity"]["id"] for e in arrived[1:]) == sorted(earlier)
    await standin.push_event(standin.event("create", "activity", earlier[0], athlete, {}))
    await step(runtime, receiver, [])  # announced already by the catch-up
