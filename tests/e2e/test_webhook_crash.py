"""SIGKILL `fitglue serve` in the middle of a burst of webhook events, start it again, and every
event that was answered 200 is processed: the activity it names is fetched and kept."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import time
from datetime import UTC, datetime

import aiohttp
import pytest

from service.core.clock import SystemClock
from service.core.crypto import TokenCipher
from standin import StandinConfig, StravaStandin, start_standin
from standin.testing import connect_athlete
from tests.e2e.procs import ServeProcess, base_env, free_port

pytestmark = pytest.mark.e2e

SECRET = "crash-secret-key-0123456789"
VERIFY = "crash-verify"
EVENTS = 400
KILL_AFTER = 120  # acknowledged events before the kill


def seed_connection(db_path, athlete: int, grant: dict) -> None:
    cipher, now = TokenCipher(SECRET), datetime.now(UTC).replace(tzinfo=None)
    with sqlite3.connect(db_path) as db:
        user = db.execute("INSERT INTO users (email, email_normalized, created_at) VALUES (?, ?, ?)",
                          ("burst@example.com", "burst@example.com", now)).lastrowid
        db.execute("INSERT INTO strava_connections (user_id, athlete_id, status, granted_scopes, access_token_enc,"
                   " refresh_token_enc, expires_at, connected_at, refresh_failures)"
                   " VALUES (?, ?, 'connected', ?, ?, ?, ?, ?, 0)",
                   (user, athlete, grant["scope"], cipher.encrypt(grant["access_token"]),
                    cipher.encrypt(grant["refresh_token"]),
                    datetime.fromtimestamp(grant["expires_at"], UTC).replace(tzinfo=None), now))


def crash_env(db_path, port: int, config: StandinConfig, base: str, **extra: str) -> dict[str, str]:
    """`fitglue serve`'s environment for a burst of one athlete's events against the stand-in at `base`."""
    return base_env(
        FITGLUE_DATABASE_URL=f"sqlite+aiosqlite:///{db_path}", FITGLUE_SECRET_KEY=SECRET,
        FITGLUE_PUBLIC_URL=f"http://127.0.0.1:{port}", STRAVA_CLIENT_ID=config.client_id,
        STRAVA_CLIENT_SECRET=config.client_secret, STRAVA_WEBHOOK_VERIFY_TOKEN=VERIFY,
        STRAVA_OAUTH_URL=f"{base}/oauth", STRAVA_API_URL=f"{base}/api/v3",
        FITGLUE_JOB_LEASE_S="2",  # jobs the killed process held are taken up again 2 s later
        # 400 real events of one athlete, all in one window: lift the bounds on unconfirmed work.
        FITGLUE_UNCONFIRMED_CALLS_PER_ATHLETE="100000",
        FITGLUE_UNCONFIRMED_CALLS_PER_WINDOW="100000",
        FITGLUE_PENDING_EVENTS_PER_ATHLETE="100000",
        **extra,
    )


async def burst_athlete(standin: StravaStandin, base: str, db_path, server: ServeProcess,
                        count: int) -> tuple[int, dict, list[int]]:
    """A connected athlete with `count` activities and the stand-in subscribed to `server`:
    (athlete id, subscription, activity ids)."""
    async with aiohttp.ClientSession() as http:
        grant = await connect_athlete(http, base=base)
    athlete = int(grant["athlete"]["id"])
    seed_connection(db_path, athlete, grant)
    subscription = await standin.create_subscription(f"{server.url}/webhooks/strava", VERIFY)
    assert subscription is not None, "the service did not answer Strava's validation GET"
    return athlete, subscription, [standin.add_activity(athlete, name=f"Burst {i}") for i in range(count)]


def settled(db_path, object_ids: set[int]) -> bool:
    with sqlite3.connect(db_path) as db:
        rows = dict(db.execute("SELECT object_id, state FROM webhook_events").fetchall())
        kept = {r[0] for r in db.execute("SELECT id FROM activity_summaries").fetchall()}
    return all(rows.get(i) == "processed" for i in object_ids) and object_ids <= kept


async def test_sigkill_mid_burst_loses_no_acknowledged_event(tmp_path):
    config = StandinConfig(read_limits=(100_000, 1_000_000), overall_limits=(100_000, 1_000_000))
    standin, runner, base = await start_standin("127.0.0.1", 0, config=config, clock=SystemClock())
    port = free_port()
    db_path = tmp_path / "fitglue.db"
    env = crash_env(db_path, port, config, base)
    server = ServeProcess(env, tmp_path, port)
    restarted = None
    try:
        await server.wait_ready()
        athlete, subscription, activities = await burst_athlete(standin, base, db_path, server, EVENTS)

        acknowledged: set[int] = set()
        killed = asyncio.Event()
        gate = asyncio.Semaphore(16)

        async def deliver(http: aiohttp.ClientSession, activity: int) -> None:
            body = {"aspect_type": "create", "object_type": "activity", "object_id": activity, "owner_id": athlete,
                    "subscription_id": subscription["id"], "event_time": int(time.time()), "updates": {}}
            async with gate:
                if killed.is_set():
                    return
                try:
                    async with http.post(f"{server.url}/webhooks/strava", json=body,
                                         timeout=aiohttp.ClientTimeout(total=2)) as response:
                        if response.status == 200:
                            acknowledged.add(activity)
                except (aiohttp.ClientError, TimeoutError):
                    return
            if len(acknowledged) >= KILL_AFTER and not killed.is_set():
                killed.set()
                server.proc.send_signal(signal.SIGKILL)

        async with aiohttp.ClientSession() as http:
            await asyncio.gather(*(deliver(http, a) for a in activities))
        server.proc.wait(10)
        assert server.proc.returncode == -signal.SIGKILL
        assert KILL_AFTER <= len(acknowledged) < EVENTS

        restarted = ServeProcess(env, tmp_path, port)
        await restarted.wait_ready()
        deadline = time.monotonic() + 30
        while not settled(db_path, acknowledged):
            assert time.monotonic() < deadline, "acknowledged events were not all processed after the restart"
            await asyncio.sleep(0.2)
        for activity in acknowledged:
            assert standin.count_calls("GET", f"/api/v3/activities/{activity}") >= 1
    finally:
        await server.stopped()
        if restarted is not None:
            assert await restarted.stopped() == 0, restarted.output()
        await runner.cleanup()
