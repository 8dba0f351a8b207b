"""The roles as real processes on one database: `fitglue serve --role web` stores events and nothing
more, `fitglue worker` processes them. PostgreSQL: two web processes and two workers; SQLite: one
of each on the same file (WAL). Events delivered 4x across the web processes are stored once,
processed once and fetched once; a worker killed with SIGKILL in the middle of a batch loses nothing
(its jobs are taken up again after the lease, 2 s here)."""

from __future__ import annotations

import asyncio
import signal
import time
from datetime import UTC, datetime

import aiohttp
import pytest
from sqlalchemy import func, select

from service.app.bootstrap import open_runtime
from service.connections.tokens import store_grant
from service.core.clock import SystemClock
from service.db.migrate import upgrade_to_head
from service.db.models import Job, StravaConnection, User, WebhookEvent
from service.strava import TokenGrant
from standin import StandinConfig, start_standin
from standin.testing import connect_athlete
from tests.conftest import make_settings
from tests.dbutil import backend, fresh_database_url
from tests.e2e.procs import ServeProcess, base_env, free_port
from troubleshooting.vocabulary import ConnectionStatus

pytestmark = pytest.mark.e2e

SECRET = "roles-secret-key-0123456789abcdef"
VERIFY = "roles-verify"
PER_ROLE = 2 if backend() == "postgres" else 1  # SQLite: one web and one worker


async def seed(url: str, standin_base: str, athletes: int) -> list[int]:
    """Connected athletes (tokens the stand-in knows) in a migrated database; their ids."""
    rt = await open_runtime(make_settings(url, secret_key=SECRET))
    ids = []
    try:
        await upgrade_to_head(rt.engine)
        now = datetime.now(UTC)
        async with aiohttp.ClientSession() as http, rt.sessions() as session, session.begin():
            for n in range(athletes):
                body = await connect_athlete(http, base=standin_base)
                user = User(email=f"role{n}@example.com", email_normalized=f"role{n}@example.com", created_at=now)
                session.add(user)
                await session.flush()
                conn = StravaConnection(user_id=user.id, athlete_id=int(body["athlete"]["id"]), status=ConnectionStatus.CONNECTED,
                                        granted_scopes=body["scope"], connected_at=now, refresh_failures=0)
                store_grant(conn, TokenGrant(body["access_token"], body["refresh_token"], int(body["expires_at"])),
                            rt.cipher)
                session.add(conn)
                ids.append(conn.athlete_id)
    finally:
        await rt.close()
    return ids


async def counts(url: str) -> dict[str, int]:
    rt = await open_runtime(make_settings(url, secret_key=SECRET))
    try:
        async with rt.sessions() as session:
            def count(stmt):
                return session.scalar(select(func.count()).select_from(stmt.subquery()))
            return {
                "events": await count(select(WebhookEvent.id)),
                "processed": await count(select(WebhookEvent.id).where(WebhookEvent.state == "processed")),
                "new": await count(select(WebhookEvent.id).where(WebhookEvent.state == "new")),
                "jobs": await count(select(Job.id).where(Job.kind == "webhook_event")),
                "jobs_done": await count(select(Job.id).where(Job.kind == "webhook_event", Job.state == "done")),
                "running": await count(select(Job.id).where(Job.state == "running")),
            }
    finally:
        await rt.close()


async def wait_for(check, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.25)


def role_env(url: str, base: str, public_port: int, config: StandinConfig) -> dict[str, str]:
    return base_env(
        FITGLUE_DATABASE_URL=url, FITGLUE_SECRET_KEY=SECRET, FITGLUE_PUBLIC_URL=f"http://127.0.0.1:{public_port}",
        STRAVA_CLIENT_ID=config.client_id, STRAVA_CLIENT_SECRET=config.client_secret,
        STRAVA_WEBHOOK_VERIFY_TOKEN=VERIFY, STRAVA_OAUTH_URL=f"{base}/oauth", STRAVA_API_URL=f"{base}/api/v3",
        FITGLUE_JOB_LEASE_S="2",  # a killed worker's jobs are taken up again 2 s later
        FITGLUE_UNCONFIRMED_CALLS_PER_ATHLETE="100000", FITGLUE_UNCONFIRMED_CALLS_PER_WINDOW="100000",
        FITGLUE_PENDING_EVENTS_PER_ATHLETE="100000")


async def deliver(webs: list[ServeProcess], events: list[dict], times: int = 4) -> None:
    """Each event `times` times, round robin over the web processes, 16 requests at once."""
    gate = asyncio.Semaphore(16)

    async def post(http: aiohttp.ClientSession, url: str, event: dict) -> None:
        async with gate, http.post(f"{url}/webhooks/strava", json=event) as response:
            assert response.status == 200, await response.text()

    async with aiohttp.ClientSession() as http:
        await asyncio.gather(*(post(http, webs[(i + k) % len(webs)].url, event)
                               for k in range(times) for i, event in enumerate(events)))


async def test_web_roles_store_and_workers_process_each_event_once(tmp_path):
    config = StandinConfig(read_limits=(100_000, 1_000_000), overall_limits=(100_000, 1_000_000))
    standin, runner, base = await start_standin("127.0.0.1", 0, config=config, clock=SystemClock())
    ports = [free_port() for _ in range(2 * PER_ROLE)]
    procs: list[ServeProcess] = []
    async with fresh_database_url(tmp_path) as url:
        try:
            athletes = await seed(url, base, 5)
            env = role_env(url, base, ports[0], config)
            webs = [ServeProcess(env, tmp_path, port, ("--role", "web")) for port in ports[:PER_ROLE]]
            procs += webs
            await asyncio.gather(*(web.wait_ready() for web in webs))
            subscription = await standin.create_subscription(f"{webs[0].url}/webhooks/strava", VERIFY)
            assert subscription is not None
            activities = [standin.add_activity(athletes[n % 5], name=f"Role {n}") for n in range(60)]
            events = [{"aspect_type": "create", "object_type": "activity", "object_id": a,
                       "owner_id": athletes[n % 5], "subscription_id": subscription["id"],
                       "event_time": 1_800_000_000 + n, "updates": {}} for n, a in enumerate(activities)]
            await deliver(webs, events)
            await asyncio.sleep(1.5)  # a web role processes nothing
            assert (await counts(url))["new"] == 60 and standin.count_calls("GET", "/api/v3/activities") == 0

            workers = [ServeProcess(env, tmp_path, port, command="worker") for port in ports[PER_ROLE:]]
            procs += workers
            await asyncio.gather(*(worker.wait_ready() for worker in workers))
            await wait_for(lambda: _all_processed(url, 60))
            await asyncio.sleep(1.0)
            assert [standin.count_calls("GET", f"/api/v3/activities/{a}") for a in activities] == [1] * 60
            assert await counts(url) == {"events": 60, "processed": 60, "new": 0, "jobs": 60, "jobs_done": 60,
                                         "running": 0}
        finally:
            codes = [await proc.stopped() for proc in procs]
            await runner.cleanup()
        assert codes == [0] * len(procs), "\n".join(p.output() for p in procs)
        for proc in procs:
            assert "Traceback" not in proc.output() and "ERROR" not in proc.output(), proc.output()


async def _all_processed(url: str, expected: int) -> bool:
    return (await counts(url))["processed"] == expected


async def test_a_worker_killed_mid_batch_loses_nothing(tmp_path):
    # Each Strava answer takes 200 ms: a batch of 64 at concurrency 8 is about 1.6 s of calls.
    config = StandinConfig(read_limits=(100_000, 1_000_000), overall_limits=(100_000, 1_000_000), latency_s=0.2)
    standin, runner, base = await start_standin("127.0.0.1", 0, config=config, clock=SystemClock())
    web_port, first_port, second_port = free_port(), free_port(), free_port()
    procs: list[ServeProcess] = []
    async with fresh_database_url(tmp_path) as url:
        try:
            athletes = await seed(url, base, 4)
            env = role_env(url, base, web_port, config)
            web = ServeProcess(env, tmp_path, web_port, ("--role", "web"))
            first = ServeProcess(env, tmp_path, first_port, command="worker")
            procs += [web, first]
            await asyncio.gather(web.wait_ready(), first.wait_ready())
            subscription = await standin.create_subscription(f"{web.url}/webhooks/strava", VERIFY)
            assert subscription is not None
            activities = [standin.add_activity(athletes[n % 4], name=f"Kill {n}") for n in range(200)]
            await deliver([web], [{"aspect_type": "create", "object_type": "activity", "object_id": a,
                                   "owner_id": athletes[n % 4], "subscription_id": subscription["id"],
                                   "event_time": 1_800_000_000 + n, "updates": {}}
                                  for n, a in enumerate(activities)], times=1)
            # Kill it while it holds a batch: some events processed, calls in flight.
            await wait_for(lambda: asyncio.sleep(0, standin.count_calls("GET", "/api/v3/activities") >= 20))
            first.proc.send_signal(signal.SIGKILL)
            first.proc.wait(10)
            at_kill = await counts(url)
            assert at_kill["processed"] < 200 and at_kill["running"] > 0  # it died holding claimed jobs
            # Another worker: it finds the killed one's claims and takes them up once their lease ran out.
            second = ServeProcess(env, tmp_path, second_port, command="worker")
            procs.append(second)
            await second.wait_ready()
            await wait_for(lambda: _all_processed(url, 200), timeout=90)
            assert all(standin.count_calls("GET", f"/api/v3/activities/{a}") >= 1 for a in activities)
            assert (await counts(url))["jobs_done"] == 200
        finally:
            codes = [await proc.stopped() for proc in procs]
            await runner.cleanup()
        assert codes[:1] + codes[2:] == [0] * (len(codes) - 1), "\n".join(p.output() for p in procs)
