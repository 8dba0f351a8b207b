"""The support view of outbound events (issue 12): the `events_undelivered` finding with its
`retry_events` action, and the outbox's health on the App Home and /metrics."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from service.app.factory import build_app
from service.background.job_handlers import deliver_pending
from service.db.models import OutboundEvent
from service.desk.support_desk import SupportDesk, SupportError
from service.outbox import CONNECTED, connection_data, write_event
from tests.webhook_support import connect_directly


async def stuck_event(runtime, athlete: int, *, parked: bool) -> None:
    async with runtime.write() as session:
        row = await write_event(session, runtime.settings, runtime.clock.now(), CONNECTED,
                                connection_data("alice@example.com", athlete, "connected", "read"), athlete_id=athlete)
        await session.execute(update(OutboundEvent).where(OutboundEvent.id == row).values(
            state="failed" if parked else "pending", attempts=3, last_error="the receiver answered HTTP 503"))


async def test_a_users_undelivered_events_are_a_finding_with_a_retry_action(events_runtime, standin, receiver, clock):
    runtime = events_runtime
    athlete = await connect_directly(runtime, standin)
    desk = SupportDesk(runtime)
    assert "events_undelivered" not in (await desk.diagnose("alice@example.com")).ids
    await stuck_event(runtime, athlete, parked=True)
    await stuck_event(runtime, athlete, parked=False)
    found = (await desk.diagnose(str(athlete))).finding("events_undelivered")
    assert found.severity == "warning" and found.actions == ("retry_events",)
    assert "last 2 event(s)" in found.detail and "HTTP 503" in found.detail

    assert (await desk.events.retry_user_events("alice@example.com", "slack:U1")).count == 2
    await deliver_pending(runtime)
    assert len(receiver.accepted()) == 2
    assert "events_undelivered" not in (await desk.diagnose("alice@example.com")).ids
    for bad, code in (("not an address", "bad_argument"), ("nobody@example.com", "unknown_user")):
        with pytest.raises(SupportError) as info:
            await desk.events.retry_user_events(bad, "slack:U1")
        assert info.value.code == code


async def test_app_home_and_metrics_show_the_outbox_health(aiohttp_client, events_runtime, standin, clock):
    runtime = events_runtime
    athlete = await connect_directly(runtime, standin)
    await stuck_event(runtime, athlete, parked=True)
    await stuck_event(runtime, athlete, parked=False)
    clock.advance(90)
    outbound = (await SupportDesk(runtime).home.summary()).to_dict()["outbound"]
    assert outbound == {"pending": 1, "failed": 1, "oldest_pending_age_s": 90.0, "last_success_at": None}
    client = await aiohttp_client(build_app(runtime, background=False))
    text = await (await client.get("/metrics")).text()
    assert 'fitglue_outbound_events{state="pending"} 1' in text
    assert 'fitglue_outbound_events{state="failed"} 1' in text
    assert "fitglue_outbound_oldest_pending_age_seconds{} 90" in text
    assert "alice@example.com" not in text and str(athlete) not in text


async def test_app_home_says_when_events_are_off(runtime):
    assert (await SupportDesk(runtime).home.summary()).to_dict()["outbound"] is None
