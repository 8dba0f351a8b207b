"""SIGKILL `fitglue serve` in the middle of a burst, start it again: every state change that was
committed (an activity fetched and stored) still produces its outbound event, and no event names an
activity that was not stored (issue 12: "a crash can neither lose nor invent one")."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import time

import aiohttp
import pytest

from service.core.clock import SystemClock
from standin import StandinConfig, start_standin
from standin.event_receiver import start_event_receiver
from tests.e2e.procs import ServeProcess, free_port
from tests.e2e.test_webhook_crash import burst_athlete, crash_env
from tests.events.conftest import EVENTS_SECRET

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

EVENTS = 200
KILL_AFTER = 60


def stored_activities(db_path) -> set[int]:
    with sqlite3.connect(db_path) as db:
        return {row[0] for row in db.execute("SELECT id FROM activity_summaries").fetchall()}


async def test_sigkill_mid_burst_loses_no_committed_event(tmp_path):
    config = StandinConfig(read_limits=(100_000, 1_000_000), overall_limits=(100_000, 1_000_000))
    standin, runner, base = await start_standin("127.0.0.1", 0, config=config, clock=SystemClock())
    receiver, receiver_runner, events_url = await start_event_receiver(EVENTS_SECRET)
    port = free_port()
    db_path = tmp_path / "fitglue.db"
    # An event claim lasts twice the timeout: the killed process's claims run out 2 s later.
    env = crash_env(db_path, port, config, base, FITGLUE_EVENTS_URL=events_url, FITGLUE_EVENTS_SECRET=EVENTS_SECRET,
                    FITGLUE_EVENTS_TIMEOUT_S="1")
    server = ServeProcess(env, tmp_path, port)
    restarted = None
    try:
        await server.wait_ready()
        athlete, subscription, activities = await burst_athlete(standin, base, db_path, server, EVENTS)

        async def deliver(http: aiohttp.ClientSession, activity: int) -> None:
            body = {"aspect_type": "create", "object_type": "activity", "object_id": activity, "owner_id": athlete,
                    "subscription_id": subscription["id"], "event_time": int(time.time()), "updates": {}}
            try:
                async with http.post(f"{server.url}/webhooks/strava", json=body,
                                     timeout=aiohttp.ClientTimeout(total=2)):
                    pass
            except (aiohttp.ClientError, TimeoutError):
                return

        async def kill_when_busy() -> None:
            # Killed while events are being stored, processed and sent, with more stored than sent.
            await receiver.wait_for(KILL_AFTER, timeout_s=30)
            server.proc.send_signal(signal.SIGKILL)

        killer = asyncio.ensure_future(kill_when_busy())
        async with aiohttp.ClientSession() as http:
            for start in range(0, EVENTS, 10):
                if server.proc.poll() is not None:
                    break
                await asyncio.gather(*(deliver(http, a) for a in activities[start:start + 10]))
        await asyncio.wait_for(killer, 30)
        server.proc.wait(10)
        assert server.proc.returncode == -signal.SIGKILL
        with sqlite3.connect(db_path) as db:
            pending = db.execute("SELECT count(*) FROM outbound_events WHERE state = 'pending'").fetchone()[0]
        assert pending > 0, "nothing was waiting to be sent at the kill: this test would check nothing"

        restarted = ServeProcess(env, tmp_path, port)
        await restarted.wait_ready()
        deadline = time.monotonic() + 60
        while True:
            stored = stored_activities(db_path)
            announced = {e.data["activity"]["id"] for e in receiver.accepted() if e.type == "strava.activity.created"}
            if stored and stored <= announced:
                break
            assert time.monotonic() < deadline, f"{len(stored - announced)} stored activities were never announced"
            await asyncio.sleep(0.2)
        assert announced <= stored, "an event announced an activity that was never stored"
        assert all(e.verified for e in receiver.received)
    finally:
        await server.stopped()
        if restarted is not None:
            assert await restarted.stopped() == 0, restarted.output()
        await receiver_runner.cleanup()
        await runner.cleanup()
