"""Two real `fitglue serve` replicas started at the same moment on one fresh PostgreSQL database,
against the Strava stand-in: nothing done twice, nothing lost, state shared."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta

import aiohttp
import asyncpg
import pytest
from yarl import URL

from bench._common import mint_grant
from service.core.clock import SystemClock
from service.core.crypto import TokenCipher
from service.ratelimit.windows import quarter_start
from standin import StandinConfig, start_standin
from standin.testing import authorize_form
from tests.dbutil import PG_ADMIN_DSN, backend, fresh_database_url
from tests.e2e.procs import ServeProcess, base_env, fitglue, free_port
from tests.flows import form_fields

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(backend() != "postgres", reason="replicas run on PostgreSQL")]

SECRET = "replica-secret-key-0123456789"
ADMIN = "replica-admin-token-0123456789"
DUE_TOKENS = 40


async def wait_for(check, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.2)
    raise AssertionError("condition not met in time")


async def seed_due_connections(dsn: str, standin) -> list[int]:
    """Users whose tokens expire in 30 minutes (inside the refresh margin), with stand-in tokens."""
    cipher, now = TokenCipher(SECRET), datetime.now(UTC)
    db = await asyncpg.connect(dsn)
    athletes = []
    try:
        for n in range(DUE_TOKENS):
            athlete = 7_000_000 + n
            access, refresh, expires = mint_grant(standin, athlete, now - timedelta(hours=5, minutes=30))
            user_id = await db.fetchval(
                "INSERT INTO users (email, email_normalized, created_at) VALUES ($1, $1, $2) RETURNING id",
                f"due{n}@example.com", now.replace(tzinfo=None))
            await db.execute(
                "INSERT INTO strava_connections (user_id, athlete_id, status, granted_scopes, access_token_enc,"
                " refresh_token_enc, expires_at, refresh_failures) VALUES ($1, $2, 'connected',"
                " 'activity:read_all,activity:write,profile:read_all,read', $3, $4, $5, 0)",
                user_id, athlete, cipher.encrypt(access), cipher.encrypt(refresh), expires.replace(tzinfo=None))
            athletes.append(athlete)
    finally:
        await db.close()
    return athletes


async def test_two_replicas_share_one_database(tmp_path):
    standin, runner, base = await start_standin("127.0.0.1", 0, config=StandinConfig(), clock=SystemClock())
    port_a, port_b = free_port(), free_port()
    async with fresh_database_url(tmp_path) as url:
        dsn = url.replace("postgresql+asyncpg://", "postgresql://")
        env = base_env(
            FITGLUE_DATABASE_URL=url, FITGLUE_SECRET_KEY=SECRET, FITGLUE_ADMIN_TOKEN=ADMIN,
            # one public URL, as behind a load balancer: Strava's redirects and webhooks reach replica B
            FITGLUE_PUBLIC_URL=f"http://127.0.0.1:{port_b}",
            STRAVA_CLIENT_ID=standin.config.client_id, STRAVA_CLIENT_SECRET=standin.config.client_secret,
            STRAVA_WEBHOOK_VERIFY_TOKEN="replica-verify", STRAVA_OAUTH_URL=f"{base}/oauth",
            STRAVA_API_URL=f"{base}/api/v3", FITGLUE_REFRESH_INTERVAL_S="1")
        a = ServeProcess(env, tmp_path, port_a)
        b = ServeProcess(env, tmp_path, port_b)  # same moment: the migration lock keeps them apart
        try:
            await asyncio.gather(a.wait_ready(), b.wait_ready())
            async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
                # 1. a Connect flow that starts on A and returns to B
                link = json.loads(fitglue(["link", "flow@example.com", "--json"], env, tmp_path).stdout)["url"]
                token = URL(link).query["t"]
                async with http.get(f"{a.url}/connect/strava", params={"t": token}) as page:
                    assert page.status == 200
                    fields = form_fields(await page.text())
                async with http.post(f"{a.url}/connect/strava/authorize", data=fields,
                                     allow_redirects=False) as press:
                    authorize = URL(press.headers["Location"])
                async with http.post(authorize.with_query(None), data=authorize_form(dict(authorize.query)),
                                     allow_redirects=False) as consent:
                    callback = URL(consent.headers["Location"])
                assert callback.port == port_b
                async with http.get(callback) as result:
                    assert result.status == 200 and "Connected" in await result.text()
                # the Connect made sure the webhook subscription exists
                await wait_for(lambda: asyncio.sleep(0, standin.subscription is not None))
                subscription_id = standin.subscription["id"]
                flow_athlete = next(iter(standin.state.grants))

                # 2. each due token refreshed exactly once although both replicas sweep every second
                token_calls_before = standin.count_calls("POST", "/oauth/token")
                await seed_due_connections(dsn, standin)

                async def all_refreshed() -> bool:
                    db = await asyncpg.connect(dsn)
                    try:
                        return await db.fetchval("SELECT count(*) FROM strava_connections WHERE "
                                                 "last_refresh_at IS NOT NULL") == DUE_TOKENS
                    finally:
                        await db.close()

                await wait_for(all_refreshed)
                await asyncio.sleep(2.5)  # two more sweeps on each replica: nothing left to do
                assert standin.count_calls("POST", "/oauth/token") - token_calls_before == DUE_TOKENS

                # 3. each webhook event processed once, whichever replica got it, however often redelivered
                activities = [standin.add_activity(flow_athlete, name=f"Run {i}") for i in range(10)]
                fetched_in_quarter = quarter_start(datetime.now(UTC))
                for i, activity in enumerate(activities):
                    event = {"aspect_type": "create", "event_time": 1_700_000_000 + i, "object_id": activity,
                             "object_type": "activity", "owner_id": flow_athlete,
                             "subscription_id": subscription_id, "updates": {}}
                    for replica in (a, b, b, a):
                        async with http.post(f"{replica.url}/webhooks/strava", json=event) as response:
                            assert response.status == 200

                async def all_fetched() -> bool:
                    return all(standin.count_calls("GET", f"/api/v3/activities/{x}") >= 1 for x in activities)

                await wait_for(all_fetched)
                await asyncio.sleep(1.5)
                assert [standin.count_calls("GET", f"/api/v3/activities/{x}") for x in activities] == [1] * 10
                db = await asyncpg.connect(dsn)
                try:
                    assert await db.fetchval("SELECT count(*) FROM webhook_events") == 10
                    assert await db.fetchval("SELECT count(*) FROM jobs WHERE kind='webhook_event'") == 10
                    assert await db.fetchval("SELECT count(*) FROM jobs WHERE state='done' "
                                             "AND kind='webhook_event'") == 10
                    assert await db.fetchval("SELECT count(*) FROM activity_summaries") == 10
                finally:
                    await db.close()

                # 4. rate-limit usage is shared: both replicas report the same numbers
                headers = {"Authorization": f"Bearer {ADMIN}"}
                reports = []
                for replica in (a, b):
                    async with http.get(f"{replica.url}/admin/api/rate-limit", headers=headers) as response:
                        assert response.status == 200
                        reports.append(await response.json())
                assert reports[0]["read"] == reports[1]["read"] and reports[0]["overall"] == reports[1]["overall"]
                # Strava's 15-minute windows start at the quarter hour; when one began between the fetches
                # and this report, the new window has no usage reported yet (None), and that is right.
                if quarter_start(datetime.now(UTC)) == fetched_in_quarter:
                    assert reports[0]["read"]["15min"]["usage"] >= 10
        finally:
            codes = (await a.stopped(), await b.stopped())
            await runner.cleanup()
        assert codes == (0, 0), a.output() + b.output()
        for replica in (a, b):
            assert "Traceback" not in replica.output(), replica.output()
    assert PG_ADMIN_DSN  # the shared server was only ever used through fresh databases
