"""Helpers for the webhook / queue / rate-limit tests: a live service the stand-in can call, a
connected athlete without the browser flow, and small database look-ups."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
from sqlalchemy import select

from service.background.webhooks.intake import EventIntake, _Pending
from service.background.webhooks.strava_events import parse_event
from service.connections.tokens import store_grant
from service.connections.users import connection_for, get_or_create_user
from service.core.runtime import Runtime
from service.db.models import Job, StravaConnection, WebhookEvent
from service.strava import TokenGrant
from service.subscription.state import event_job_key
from standin import StravaStandin
from standin.testing import connect_athlete
from troubleshooting.vocabulary import ConnectionStatus


async def subscribed_service(aiohttp_client: Any, runtime: Runtime) -> Any:
    """Our app (no background work) on a real port, FITGLUE_PUBLIC_URL pointing at it, and the
    stand-in's push subscription registered to it: events the stand-in pushes reach the app."""
    from service.app.factory import build_app
    from service.desk.support_desk import SupportDesk

    client = await aiohttp_client(build_app(runtime, background=False))
    point_public_url_at(runtime, client)
    report = await SupportDesk(runtime).webhooks.reregister_webhook("test")
    assert report.ok, report.steps
    return client


def point_public_url_at(runtime: Runtime, client: Any) -> str:
    """Make FITGLUE_PUBLIC_URL the test server's real address (the stand-in calls it back)."""
    base = str(client.make_url("")).rstrip("/")
    runtime.settings = runtime.settings.replaced(public_url=base)
    return base


async def connect_directly(runtime: Runtime, standin: StravaStandin, email: str = "alice@example.com",
                           granted: list[str] | None = None) -> int:
    """Authorize at the stand-in over HTTP and store the grant as a Connect would; the athlete id.
    `granted`: the scopes the athlete ticks (default: every one asked for, which then also
    includes any scope named here)."""
    asked = ["read", "activity:read_all", "activity:write", "profile:read_all"]
    asked += [s for s in granted or () if s not in asked]
    async with aiohttp.ClientSession() as http:
        body = await connect_athlete(http, base=standin.base_url or "", granted=granted, scope=",".join(asked))
    athlete_id = int(body["athlete"]["id"])
    now = runtime.clock.now()
    async with runtime.sessions() as session, session.begin():
        user, _ = await get_or_create_user(session, email, now)
        conn = await connection_for(session, user, now)
        store_grant(conn, TokenGrant(body["access_token"], body["refresh_token"], int(body["expires_at"])),
                    runtime.cipher)
        conn.athlete_id = athlete_id
        conn.status = ConnectionStatus.CONNECTED
        conn.granted_scopes = body["scope"]
        conn.connected_at = now
    return athlete_id


async def connection(runtime: Runtime, athlete_id: int) -> StravaConnection:
    async with runtime.sessions() as session:
        return (await session.execute(select(StravaConnection).where(StravaConnection.athlete_id == athlete_id))
                ).scalar_one()


async def all_jobs(runtime: Runtime) -> list[Job]:
    async with runtime.sessions() as session:
        return list((await session.execute(select(Job).order_by(Job.id))).scalars())


async def all_events(runtime: Runtime) -> list[WebhookEvent]:
    async with runtime.sessions() as session:
        return list((await session.execute(select(WebhookEvent).order_by(WebhookEvent.id))).scalars())


# ---- one intake batch through a writer and through the SQLAlchemy reference path -----------------

async def seeded_batch(runtime, standin) -> list:
    """One batch covering every branch of `pending.plan_intake`: a job, a known failure (no activity
    read), an unknown athlete, events beyond the pending bound (settled + one catch-up), an athlete
    event and a duplicate within the batch."""
    full = await connect_directly(runtime, standin, "full@example.com")
    no_read = await connect_directly(runtime, standin, "noread@example.com", granted=["read"])
    flooded = await connect_directly(runtime, standin, "flood@example.com")
    bodies = [standin.event("create", "activity", 7_000_001, full, {}),
              standin.event("create", "activity", 7_000_002, no_read, {}),
              standin.event("create", "activity", 7_000_003, 424_242, {}),
              standin.event("update", "athlete", full, full, {"authorized": "false"}),
              *(standin.event("create", "activity", 7_100_000 + n, flooded, {}) for n in range(5)),
              standin.event("create", "activity", 7_000_001, full, {})]
    return [parse_event(json.dumps({**body, "subscription_id": 1}).encode()) for body in bodies]


async def snapshot(runtime) -> tuple[list, list]:
    events = await all_events(runtime)
    keys = {e.id: e.dedupe_key for e in events}

    def named(job) -> tuple:  # event ids differ between runs: name an event job's event by its dedupe key
        payload = json.loads(job.payload)
        if "event_id" in payload:
            assert job.dedupe_key == event_job_key(payload["event_id"])
            return ({**payload, "event_id": keys[payload["event_id"]]}, "event job")
        return (payload, job.dedupe_key)

    jobs = await all_jobs(runtime)
    return (sorted((e.dedupe_key, e.state, e.error, e.processed_at, e.received_at) for e in events),
            sorted(repr((j.kind, *named(j), j.priority, j.run_after, j.state, j.user_id, j.created_at)) for j in jobs))


async def store(intake: EventIntake, runtime, events) -> list[bool]:
    batch = [_Pending(event, runtime.clock.now(), None) for event in events]  # type: ignore[arg-type]
    return await intake._store(batch)
