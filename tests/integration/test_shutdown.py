"""Shutdown waits for the tasks it cancels or leaves running, before what they use is closed.

The fault: a task still running when its runtime closed unwound later, against a disposed pool or
during asyncio.run's last cancellation. With SQLAlchemy's aiosqlite adapter its connection's
graceful close could then wait forever, and `fitglue serve` never exited after SIGTERM (killed:
exit -9; stop 17's CI). The members of that kind found in the code each have a test here:
the scheduler's jobs (APScheduler cancels them without waiting), a token refresh whose caller went
away (a task of its own that nothing waited for), the diagnosis's subscription look (cancelled,
not awaited), and the bound on all of it (`wind_down`).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from service.app.bootstrap import open_runtime, upgrade_to_head
from service.background import scheduler
from service.core.runtime import Runtime
from service.core.wind_down import wind_down
from tests import token_support
from tests.conftest import make_settings
from tests.token_support import ALICE, LIFETIME_S

client = token_support.client
alice = token_support.alice


class SlowToUnwind:
    """A periodic job that waits until cancelled, then needs a few more turns of the loop to clean
    up (as a database session does when it rolls back and returns its connection)."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.unwound = False

    async def __call__(self, rt: Runtime) -> None:
        self.started.set()
        try:
            await asyncio.Event().wait()
        finally:
            for _ in range(5):
                await asyncio.sleep(0.01)
            self.unwound = True


async def test_leaving_the_scheduler_waits_until_its_cancelled_jobs_have_unwound(runtime, monkeypatch):
    job = SlowToUnwind()
    monkeypatch.setattr(scheduler, "periodic_jobs", lambda rt: [("slow", job, 3600)])
    async with scheduler.run_scheduler(runtime, first_run_after_s=0):
        await asyncio.wait_for(job.started.wait(), 5)
    # Before: APScheduler's shutdown only cancelled it, and the runtime closed under its clean-up.
    assert job.unwound is True
    assert not [t for t in asyncio.all_tasks() if "slow" in repr(t) or "SlowToUnwind" in repr(t)]


async def test_closing_the_runtime_waits_for_a_refresh_whose_caller_went_away(database_url, standin, clock):
    """The refresh is a task of its own so a caller that goes away never cuts it short; it must also
    end before the runtime closes the pool and the HTTP session it uses."""
    from service.app.factory import build_app
    from service.connections.token_reads import TokenReader
    from tests.token_support import connect_user, enable, refresh_left_by_its_caller

    rt = await open_runtime(make_settings(database_url, standin), clock)
    await upgrade_to_head(rt.engine)
    closed = False
    try:
        from aiohttp.test_utils import TestClient, TestServer

        enable(rt)
        async with TestClient(TestServer(build_app(rt, background=False))) as http:
            await connect_user(http, rt, ALICE)
        clock.advance(LIFETIME_S - 120)
        standin.config.latency_s = 0.3
        reader = TokenReader(rt)
        _caller, flight = await refresh_left_by_its_caller(rt, reader)
        await reader.close()
        await rt.close()
        closed = True
        # Before: close() did not know the flight, which went on against a closed pool and session.
        assert flight.done() and not flight.cancelled() and flight.exception() is None
    finally:
        if not closed:
            await rt.close()
    assert standin.count_calls("POST", "/oauth/token") == 2  # the exchange, then the one refresh


async def test_a_diagnosis_that_fails_waits_for_its_subscription_look(runtime, monkeypatch):
    from service.desk import observations
    from service.subscription.cache import SubscriptionCache

    look_unwound = asyncio.Event()

    async def slow_look(self: Any) -> Any:
        try:
            await asyncio.Event().wait()
        finally:
            await asyncio.sleep(0.02)
            look_unwound.set()

    async def failing_read(*args: Any) -> Any:
        await asyncio.sleep(0.01)
        raise RuntimeError("database gone")

    monkeypatch.setattr(SubscriptionCache, "look", slow_look)
    monkeypatch.setattr(observations, "_gather_from_db", failing_read)
    with pytest.raises(RuntimeError):
        await observations.gather_facts(runtime, "alice@example.com")
    # Before: the look was cancelled and left to unwind whenever.
    assert look_unwound.is_set()


async def test_wind_down_lets_tasks_finish_then_cancels_and_leaves_a_stuck_one_behind(caplog):
    caplog.set_level(logging.WARNING)
    finished = asyncio.ensure_future(asyncio.sleep(0.01))
    slow = asyncio.ensure_future(asyncio.sleep(60))

    released = False

    async def refuses_to_stop() -> None:
        while not released:
            try:
                await asyncio.sleep(60)
            except asyncio.CancelledError:
                continue

    stuck = asyncio.ensure_future(refuses_to_stop())
    loop = asyncio.get_running_loop()
    began = loop.time()
    await wind_down([finished, slow, stuck], 0.05, "test task(s)")
    assert loop.time() - began < 1.0  # 2 × grace, not the 60 s the tasks would take
    assert finished.done() and not finished.cancelled()
    assert slow.cancelled()
    assert not stuck.done()
    assert [r.getMessage() for r in caplog.records if r.name == "service.core.wind_down"] == [
        "1 test task(s) still running 0.05 s after being cancelled at shutdown; left behind"]
    released = True
    stuck.cancel()
    await stuck


async def test_wind_down_cut_short_cancels_at_once_and_retrieves_exceptions():
    async def fails_when_cancelled() -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            raise ValueError("cleaning up failed") from None

    task = asyncio.ensure_future(fails_when_cancelled())
    await asyncio.sleep(0)
    await wind_down([task], 5, "test task(s)", cut_short=True)
    assert task.done() and isinstance(task.exception(), ValueError)


async def test_closing_the_runtime_waits_for_a_task_started_while_it_winds_down(runtime):
    """A held task may start another before it ends (a Slack dispatch starts its listener; a
    refusal's reply is spawned by the access check): that one is waited for too."""
    later_finished = asyncio.Event()

    async def later() -> None:
        await asyncio.sleep(0.1)  # a listener reading the database
        later_finished.set()

    async def first() -> None:
        await asyncio.sleep(0.05)
        runtime.spawn(later())

    runtime.spawn(first())
    await runtime.close()
    # Before: close() waited only for the tasks held when it began; `later` ran on past the pool.
    assert later_finished.is_set()
    assert not runtime._tasks


async def test_wind_down_of_a_live_collection_stays_bounded_however_many_tasks_join_it():
    held: set[asyncio.Task[None]] = set()

    async def starts_another() -> None:
        await asyncio.sleep(0.01)
        task = asyncio.ensure_future(starts_another())
        held.add(task)
        task.add_done_callback(held.discard)

    first = asyncio.ensure_future(starts_another())
    held.add(first)
    first.add_done_callback(held.discard)
    loop = asyncio.get_running_loop()
    began = loop.time()
    await wind_down(held, 0.1, "test task(s)")
    assert loop.time() - began < 1.0  # 2 × grace, although each task ends by starting the next
    assert not held


async def test_stopping_the_outbound_delivery_is_bounded_by_the_grace_and_releases_what_it_claimed(runtime):
    """A receiver that never answers holds a delivery round for FITGLUE_EVENTS_TIMEOUT_S (up to
    300 s). The stop gives it FITGLUE_SHUTDOWN_GRACE_S, as the queue worker's jobs get, then cuts the
    round short; the events it claimed are handed back, due again at once."""
    from aiohttp import web
    from sqlalchemy import select

    from service.background.outbound import OutboundDelivery
    from service.db.models import OutboundEvent
    from service.outbox import CONNECTED, write_event
    from tests.events.conftest import EVENTS_SECRET

    arrived = asyncio.Event()

    async def never_answers(request: web.Request) -> web.Response:
        arrived.set()
        await asyncio.sleep(3600)
        return web.Response()

    app = web.Application()
    app.router.add_post("/events", never_answers)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        runtime.settings = runtime.settings.replaced(
            events_url=f"http://127.0.0.1:{runner.addresses[0][1]}/events", events_secret=EVENTS_SECRET,
            events_timeout_s=300, shutdown_grace_s=1)
        async with runtime.write() as session:
            await write_event(session, runtime.settings, runtime.clock.now(), CONNECTED,
                              {"email": "a@example.com", "athlete_id": 1, "status": "connected"}, athlete_id=1)
        delivery = OutboundDelivery(runtime)
        delivery.start()
        await asyncio.wait_for(arrived.wait(), 10)
        loop = asyncio.get_running_loop()
        began = loop.time()
        # Before: stop() waited for the round, i.e. the whole FITGLUE_EVENTS_TIMEOUT_S.
        await asyncio.wait_for(delivery.stop(), 10)
        assert loop.time() - began < 4.0  # 2 × grace at most
        async with runtime.sessions() as session:
            [event] = (await session.execute(select(OutboundEvent))).scalars()
        assert (event.state, event.claimed_by, event.claimed_until) == ("pending", None, None)
    finally:
        await runner.cleanup()


async def test_a_request_in_flight_gets_the_grace_not_aiohttps_60_s():
    """`app_runner`: a stop gives a request in flight FITGLUE_SHUTDOWN_GRACE_S, then cancels it
    (before: aiohttp's default 60 s)."""
    import aiohttp
    from aiohttp import web

    from service.app.roles import app_runner
    from service.core.settings import Settings

    started, cancelled = asyncio.Event(), asyncio.Event()

    async def slow(request: web.Request) -> web.Response:
        started.set()
        try:
            await asyncio.sleep(120)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return web.Response(text="late")

    app = web.Application()
    app.router.add_get("/slow", slow)
    runner = app_runner(app, Settings.from_values(shutdown_grace_s=1))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    async with aiohttp.ClientSession() as http:
        request = asyncio.ensure_future(http.get(f"http://127.0.0.1:{port}/slow"))
        await asyncio.wait_for(started.wait(), 5)
        loop = asyncio.get_running_loop()
        began = loop.time()
        await asyncio.wait_for(runner.cleanup(), 15)
        assert loop.time() - began < 5 and cancelled.is_set()
        await asyncio.gather(request, return_exceptions=True)
