"""The database becomes unreachable (a cut TCP proxy in front of PostgreSQL): the webhook endpoint
answers 503 so Strava delivers again, /readyz fails, and both recover by themselves."""

from __future__ import annotations

import asyncio
import time

import pytest

from service.app.bootstrap import open_runtime
from service.app.factory import build_app
from service.db.migrate import upgrade_to_head
from tests.conftest import make_settings
from tests.dbutil import backend
from tests.faults.tcp_proxy import CuttableProxy

pytestmark = pytest.mark.skipif(backend() != "postgres", reason="needs PostgreSQL behind a proxy")


def event(n: int, subscription_id: int = 1) -> dict:
    return {"aspect_type": "create", "event_time": 1_700_000_000 + n, "object_id": 9_000 + n,
            "object_type": "activity", "owner_id": 42, "subscription_id": subscription_id, "updates": {}}


async def eventually(check, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.2)
    raise AssertionError(f"did not recover in {timeout}s (last: {last})")


async def test_webhook_answers_503_and_readyz_fails_while_the_database_is_gone(
        aiohttp_client, database_url, standin, clock):
    proxy = CuttableProxy("127.0.0.1", 5432)
    await proxy.start()
    proxied = database_url.replace("@127.0.0.1:5432/", f"@127.0.0.1:{proxy.port}/")
    rt = await open_runtime(make_settings(proxied, standin), clock)
    try:
        await upgrade_to_head(rt.engine)
        client = await aiohttp_client(build_app(rt, background=False))
        assert (await client.post("/webhooks/strava", json=event(1))).status == 200
        assert (await client.get("/readyz")).status == 200

        proxy.cut()
        down = await client.post("/webhooks/strava", json=event(2))
        assert down.status == 503
        assert (await client.get("/readyz")).status == 503

        proxy.restore()

        async def accepted() -> bool:
            return (await client.post("/webhooks/strava", json=event(2))).status == 200

        async def ready() -> bool:
            return (await client.get("/readyz")).status == 200

        await eventually(accepted)
        await eventually(ready)
        # the event refused during the outage was stored once Strava delivered it again
        async with rt.engine.connect() as conn:
            from sqlalchemy import text

            count = (await conn.execute(text("SELECT count(*) FROM webhook_events"))).scalar()
        assert count == 2
    finally:
        await rt.close()
        await proxy.close()
