"""Delivery guarantees (issue 12), with the injected clock moving through the retry schedule: a
receiver that is down and recovers gets everything in order with unchanged ids; an event that never
gets through is parked after the last attempt, one alert goes out per incident, and the athlete's
later events flow again."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select

from service.background.alert_checks import check_alerts
from service.background.job_handlers import deliver_pending
from service.background.outbound import OutboundDelivery
from service.core.incidents import IncidentAlerts
from service.db.models import OutboundEvent
from service.outbox import CONNECTED, RECOVERED, write_event
from service.outbox.deliveries import next_attempt_after


class RecordingPoster:
    """Where the service's IncidentAlerts post (Slack in production): what was posted."""

    def __init__(self) -> None:
        self.posted: list[str] = []
        self.resolved: list[str] = []

    async def post_alert(self, kind: str, message: str) -> bool:
        self.posted.append(kind)
        return True

    async def post_resolved(self, kind: str) -> bool:
        self.resolved.append(kind)
        return True


async def write(runtime, athlete: int | None, event_type: str = CONNECTED) -> str:
    async with runtime.write() as session:
        row_id = await write_event(session, runtime.settings, runtime.clock.now(), event_type,
                                   {"email": f"{athlete}@example.com", "athlete_id": athlete, "status": "connected"},
                                   athlete_id=athlete)
        return (await session.get(OutboundEvent, row_id)).webhook_id


async def rows(runtime) -> dict[str, OutboundEvent]:
    async with runtime.sessions() as session:
        return {e.webhook_id: e for e in (await session.execute(select(OutboundEvent))).scalars()}


def test_the_schedule_gives_the_wait_after_each_failed_attempt_then_parks():
    schedule = (5, 300, 1800)
    assert [next_attempt_after(n, schedule) for n in (1, 2, 3)] == [timedelta(seconds=s) for s in schedule]
    assert next_attempt_after(4, schedule) is None


async def test_a_receiver_down_for_a_while_gets_everything_in_order_with_unchanged_ids(
        events_runtime, receiver, clock):
    runtime = events_runtime
    down = {"yes": True}
    receiver.answer = lambda event: 500 if down["yes"] else 200
    first = [await write(runtime, 1) for _ in range(3)]
    second = [await write(runtime, 2) for _ in range(2)]
    assert await deliver_pending(runtime) == 2  # one per athlete: the later ones wait behind them
    assert sorted(e.webhook_id for e in receiver.received) == sorted([first[0], second[0]])
    clock.advance(4)
    assert await deliver_pending(runtime) == 0  # not due before the schedule's 5 s
    clock.advance(1)
    assert await deliver_pending(runtime) == 2
    clock.advance(300)
    down["yes"] = False
    assert await deliver_pending(runtime) == 5
    accepted = [e.webhook_id for e in receiver.accepted()]
    assert [i for i in accepted if i in first] == first
    assert [i for i in accepted if i in second] == second
    assert {e.webhook_id for e in receiver.received if e.status == 500} == {first[0], second[0]}
    assert all(e.verified for e in receiver.received)
    stored = await rows(runtime)
    assert {i: (e.state, e.attempts) for i, e in stored.items()} == {
        **{i: ("delivered", 1) for i in first[1:] + second[1:]}, first[0]: ("delivered", 3), second[0]: ("delivered", 3)}


async def test_after_the_last_attempt_the_event_is_parked_once_alerted_and_later_events_flow(
        events_runtime, receiver, clock):
    runtime = events_runtime
    runtime.settings = runtime.settings.replaced(events_retry_schedule_s=(5, 60))
    poster = RecordingPoster()
    runtime.alerts = IncidentAlerts(runtime, poster)
    stuck = [await write(runtime, 1), await write(runtime, 2)]
    later = await write(runtime, 1, RECOVERED)
    receiver.answer = lambda event: 500 if event.webhook_id in stuck else 200
    for wait in (0, 5, 60):
        clock.advance(wait)
        await deliver_pending(runtime)
    stored = await rows(runtime)
    assert [(stored[i].state, stored[i].attempts) for i in stuck] == [("failed", 3)] * 2
    assert stored[later].state == "delivered"
    assert [e.webhook_id for e in receiver.accepted()] == [later]
    assert poster.posted == ["events_parked"]  # two parked, one incident
    await check_alerts(runtime)
    assert poster.posted == ["events_parked"]

    from service.desk.support_desk import SupportDesk

    receiver.answer = lambda event: 200
    assert (await SupportDesk(runtime).events.retry_failed_events("cli:agent")).count == 2
    await deliver_pending(runtime)
    assert [e.webhook_id for e in receiver.accepted()] == [later, *stuck]  # same ids as the parked attempts
    await check_alerts(runtime)
    assert poster.resolved == ["events_parked"]


async def test_no_answer_within_the_timeout_is_a_failed_attempt(events_runtime, clock):
    runtime = events_runtime
    # A receiver that accepts the connection and never answers.
    server = await asyncio.start_server(lambda reader, writer: asyncio.sleep(5), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    runtime.settings = runtime.settings.replaced(events_timeout_s=0.2, events_url=f"http://127.0.0.1:{port}/e")
    webhook_id = await write(runtime, 1)
    try:
        assert await OutboundDelivery(runtime).run_once() == 1
    finally:
        server.close()
    stored = (await rows(runtime))[webhook_id]
    assert stored.state == "pending" and stored.attempts == 1
    assert stored.last_error == "no answer within 0.2 s"
    assert stored.next_attempt_at == clock.now() + timedelta(seconds=5)


@pytest.mark.parametrize("url,secret", [("http://x", None)])
def test_a_url_without_a_secret_is_a_configuration_error(url, secret):
    from service.core.settings import ConfigError, Settings

    settings = Settings.from_values(events_url=url)
    with pytest.raises(ConfigError) as info:
        settings.require_events_secret()
    assert info.value.names == ("FITGLUE_EVENTS_SECRET",)


async def test_two_workers_at_once_send_each_event_once_and_each_athlete_in_order(events_runtime, receiver):
    """Replicas claim under a lease (FOR UPDATE SKIP LOCKED on PostgreSQL): never the same event twice,
    never an athlete's later event before an earlier one."""
    runtime = events_runtime
    written = [await write(runtime, athlete) for _ in range(6) for athlete in (1, 2, 3, None)]
    workers = [OutboundDelivery(runtime, worker_id=f"replica-{n}") for n in range(3)]
    for _ in range(20):
        await asyncio.gather(*(worker.run_once() for worker in workers))
    accepted = receiver.accepted()
    assert sorted(e.webhook_id for e in accepted) == sorted(written)  # each exactly once
    for athlete in (1, 2, 3):
        mine = [w for w in written if w in {e.webhook_id for e in accepted if e.data["athlete_id"] == athlete}]
        assert [e.webhook_id for e in accepted if e.data["athlete_id"] == athlete] == mine


async def _one_round_against(runtime, app, path: str) -> OutboundEvent:
    """One delivery round of one new event, FITGLUE_EVENTS_URL being `path` on a server running `app`;
    the event's row afterwards."""
    from aiohttp import web

    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    runtime.settings = runtime.settings.replaced(events_url=f"http://127.0.0.1:{runner.addresses[0][1]}{path}")
    webhook_id = await write(runtime, 1)
    try:
        assert await OutboundDelivery(runtime).run_once() == 1
    finally:
        await runner.cleanup()
    return (await rows(runtime))[webhook_id]


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_a_redirect_is_a_failed_attempt_not_a_delivery(events_runtime, status):
    """Only the receiver's own 2xx is a delivery. aiohttp follows redirects by default: a 302 to a page
    that answers GET with 200 (an http -> https hop, a login page) once marked the event delivered
    although its body never arrived anywhere."""
    from aiohttp import web

    seen: list[str] = []
    redirect = {301: web.HTTPMovedPermanently, 302: web.HTTPFound, 303: web.HTTPSeeOther,
                307: web.HTTPTemporaryRedirect, 308: web.HTTPPermanentRedirect}[status]

    async def moved(request: web.Request) -> web.Response:
        seen.append(request.method)
        raise redirect("/elsewhere")

    async def elsewhere(request: web.Request) -> web.Response:
        seen.append(f"followed {request.method}")
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/e", moved)
    app.router.add_route("*", "/elsewhere", elsewhere)
    stored = await _one_round_against(events_runtime, app, "/e")
    assert seen == ["POST"]
    assert (stored.state, stored.attempts) == ("pending", 1)
    assert stored.last_error == f"the receiver answered HTTP {status} (a redirect, to /elsewhere; " \
                                "set FITGLUE_EVENTS_URL to where it leads)"


async def test_the_events_url_is_posted_to_exactly_as_configured(events_runtime):
    """A trailing slash is part of the receiver's path (it was once cut off, so a receiver routed at
    `/hooks/` got `/hooks` and answered 404 or a redirect)."""
    from aiohttp import web

    from service.core.settings import Settings

    assert Settings.from_values(events_url="https://fitglue.example/hooks/").events_url == \
        "https://fitglue.example/hooks/"
    paths: list[str] = []

    async def hooks(request: web.Request) -> web.Response:
        paths.append(request.path)
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hooks/", hooks)
    stored = await _one_round_against(events_runtime, app, "/hooks/")
    assert paths == ["/hooks/"]
    assert stored.state == "delivered"


@pytest.mark.parametrize("url", ["ftp://fitglue.example/hooks", "fitglue.example/hooks", "http://", "https:///hooks",
                                 "http://fitglue example/hooks", "http://fitglue.example:99999/hooks", "http://[::1/hooks"])
def test_an_events_url_without_a_usable_host_is_a_configuration_error(url):
    """Refused at start-up (serve and worker exit 2 naming the variable), not at each delivery attempt."""
    from service.core.settings import ConfigError, Settings

    with pytest.raises(ConfigError) as info:
        Settings.from_values(events_url=url)
    assert "FITGLUE_EVENTS_URL" in str(info.value)


@pytest.mark.parametrize("schedule", ["5,99999999999999", "5,2592001", "0", "5,-1", "5,x"])
def test_a_retry_schedule_with_a_wait_out_of_range_is_a_configuration_error(schedule):
    """At most 30 days between attempts: a wait past the calendar once made every settle raise
    OverflowError, so the event went out again after each lease and was never parked."""
    from service.core.settings import ConfigError, Settings

    with pytest.raises(ConfigError) as info:
        Settings.from_values(events_retry_schedule_s=schedule)
    assert "FITGLUE_EVENTS_RETRY_SCHEDULE_S" in str(info.value)
    assert Settings.from_values(events_retry_schedule_s="5,2592000").events_retry_schedule_s == (5, 2592000)


async def test_a_claim_of_due_events_takes_at_most_its_limit(events_runtime):
    """As queue.store.claim: on PostgreSQL a plain IN (SELECT ... LIMIT n FOR UPDATE SKIP LOCKED) may
    be rescanned per row and lease more than FITGLUE_EVENTS_BATCH events at once."""
    from service.outbox.deliveries import claim_due

    runtime = events_runtime
    for athlete in range(12):  # one each: every one of them is due
        await write(runtime, athlete)
    now, lease = runtime.clock.now(), timedelta(seconds=60)
    assert [len(await claim_due(runtime.write, now, "w", n, lease)) for n in (8, 8)] == [8, 4]


async def test_a_2xx_with_an_endless_body_is_a_delivery_read_no_further(events_runtime):
    """The receiver's status decides; its body is never used. It was read whole: a receiver answering
    200 and then streaming without end held the round until FITGLUE_EVENTS_TIMEOUT_S and the delivered
    event counted as a failed attempt (and a large body sat in memory meanwhile)."""
    from aiohttp import web

    sent: list[int] = []

    async def endless(request: web.Request) -> web.StreamResponse:
        await request.read()
        response = web.StreamResponse(status=200)
        await response.prepare(request)
        chunk = b"x" * 65536
        try:
            while True:
                await response.write(chunk)
                sent.append(len(chunk))
        except (ConnectionResetError, ConnectionError):
            return response

    app = web.Application()
    app.router.add_post("/e", endless)
    events_runtime.settings = events_runtime.settings.replaced(events_timeout_s=3)
    loop = asyncio.get_running_loop()
    began = loop.time()
    stored = await _one_round_against(events_runtime, app, "/e")
    assert (stored.state, stored.attempts, stored.last_error) == ("delivered", 1, None)
    assert loop.time() - began < 2.5  # not the 3 s timeout
