"""The token endpoint on two real `fitglue serve` replicas sharing one PostgreSQL database: twenty
concurrent calls for an expiring token, split between the replicas, cause exactly one refresh at
the Strava stand-in, and every caller gets the refreshed token."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import aiohttp
import asyncpg
import pytest

from bench._common import mint_grant
from service.core.clock import SystemClock
from service.core.crypto import TokenCipher
from standin import StandinConfig, start_standin
from tests.dbutil import backend, fresh_database_url
from tests.e2e.procs import ServeProcess, base_env, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(backend() != "postgres", reason="replicas run on PostgreSQL")]

SECRET = "token-replica-secret-key-0123456789"
KEY = "token-replica-api-key-0123456789"
ATHLETE = 7_100_000
CALLERS = 20


async def seed_expiring_connection(dsn: str, standin) -> str:
    """One connected user whose access token (known to the stand-in) has five minutes left."""
    cipher, now = TokenCipher(SECRET), datetime.now(UTC)
    access, refresh, expires = mint_grant(standin, ATHLETE, now - timedelta(hours=6) + timedelta(minutes=5))
    db = await asyncpg.connect(dsn)
    try:
        user_id = await db.fetchval(
            "INSERT INTO users (email, email_normalized, created_at) VALUES ($1, $1, $2) RETURNING id",
            "runner@example.com", now.replace(tzinfo=None))
        await db.execute(
            "INSERT INTO strava_connections (user_id, athlete_id, status, granted_scopes, access_token_enc,"
            " refresh_token_enc, expires_at, refresh_failures) VALUES ($1, $2, 'connected',"
            " 'activity:read_all,activity:write,profile:read_all,read', $3, $4, $5, 0)",
            user_id, ATHLETE, cipher.encrypt(access), cipher.encrypt(refresh), expires.replace(tzinfo=None))
    finally:
        await db.close()
    return access


async def audited_calls(dsn: str) -> list[str]:
    db = await asyncpg.connect(dsn)
    try:
        return [row[0] for row in await db.fetch("SELECT result FROM audit_log WHERE actor = 'token-api'")]
    finally:
        await db.close()


async def test_twenty_calls_on_two_replicas_cause_one_refresh(tmp_path):
    # 300 ms per Strava answer: every call overlaps the one refresh in flight.
    standin, runner, base = await start_standin("127.0.0.1", 0, config=StandinConfig(latency_s=0.3),
                                                clock=SystemClock())
    async with fresh_database_url(tmp_path) as url:
        dsn = url.replace("postgresql+asyncpg://", "postgresql://")
        env = base_env(
            FITGLUE_DATABASE_URL=url, FITGLUE_SECRET_KEY=SECRET, FITGLUE_TOKEN_API_KEY=KEY,
            STRAVA_CLIENT_ID=standin.config.client_id, STRAVA_CLIENT_SECRET=standin.config.client_secret,
            STRAVA_WEBHOOK_VERIFY_TOKEN="token-replica-verify", STRAVA_OAUTH_URL=f"{base}/oauth",
            STRAVA_API_URL=f"{base}/api/v3",
            # The sweeps run every second but leave a token with five minutes left alone: the calls refresh it.
            FITGLUE_REFRESH_INTERVAL_S="1", FITGLUE_REFRESH_MARGIN_S="60")
        a, b = ServeProcess(env, tmp_path, free_port()), ServeProcess(env, tmp_path, free_port())
        try:
            await asyncio.gather(a.wait_ready(), b.wait_ready())
            old_token = await seed_expiring_connection(dsn, standin)
            before = standin.count_calls("POST", "/oauth/token")
            async with aiohttp.ClientSession() as http:

                async def call(n: int) -> tuple[int, dict]:
                    replica = (a, b)[n % 2]
                    body = {"who": ATHLETE if n % 4 < 2 else "runner@example.com", "min_valid_s": 600}
                    async with http.post(f"{replica.url}/internal/api/strava/token", json=body,
                                         headers={"Authorization": f"Bearer {KEY}"}) as response:
                        assert response.headers["Cache-Control"] == "no-store"
                        return response.status, await response.json()

                answers = await asyncio.gather(*(call(n) for n in range(CALLERS)))
            assert [status for status, _ in answers] == [200] * CALLERS, answers
            assert standin.count_calls("POST", "/oauth/token") - before == 1
            tokens = {body["access_token"] for _, body in answers}
            assert len(tokens) == 1 and old_token not in tokens
            assert all(body["refreshed"] for _, body in answers)
            # Audit entries are written in batches, just after the answers.
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                if len(await audited_calls(dsn)) >= CALLERS:
                    break
                await asyncio.sleep(0.1)
            assert sorted(await audited_calls(dsn)) == ["refreshed"] * CALLERS
        finally:
            codes = (await a.stopped(), await b.stopped())
            await runner.cleanup()
        assert codes == (0, 0), a.output() + b.output()
        for replica in (a, b):
            assert "Traceback" not in replica.output(), replica.output()
            assert not any(token in replica.output() for token in tokens | {old_token})
