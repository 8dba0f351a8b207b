"""The PostgreSQL intake through asyncpg (service/background/webhooks/pg_intake.py) stores exactly
what the SQLAlchemy path stores, and fails the same way: 503 and nothing stored, then recovers.

The SQLAlchemy path (`EventIntake._store_with_sqlalchemy`) stays as the reference: the same batch
through both must leave the same events and jobs (ids aside)."""

from __future__ import annotations

import json

import asyncpg
import pytest
from sqlalchemy import delete, text

from service.background.webhooks.intake import PG_LANES, EventIntake, IntakeUnavailable, _Pending
from service.background.webhooks.pg_intake import PgEventWriter
from service.background.webhooks.strava_events import parse_event
from service.db.models import Job, WebhookEvent
from tests.dbutil import backend
from tests.webhook_support import all_events, seeded_batch, snapshot, store

pytestmark = pytest.mark.skipif(backend() != "postgres", reason="the asyncpg intake is PostgreSQL's")


async def test_the_asyncpg_intake_stores_what_the_sqlalchemy_intake_stores(runtime, standin):
    runtime.settings = runtime.settings.replaced(pending_events_per_athlete=2)
    events = await seeded_batch(runtime, standin)
    intake = EventIntake(runtime)
    assert [type(writer) for writer in intake._pg] == [PgEventWriter] * PG_LANES
    try:
        through_asyncpg = await store(intake, runtime, events)
        assert through_asyncpg == [True] * 9 + [False]
        assert await store(intake, runtime, events[:3]) == [False] * 3  # redeliveries
        fast = await snapshot(runtime)
        async with runtime.write() as session:
            await session.execute(delete(Job))
            await session.execute(delete(WebhookEvent))
        intake._pg = []  # the SQLAlchemy reference path
        assert await store(intake, runtime, events) == through_asyncpg
        assert await snapshot(runtime) == fast
    finally:
        await intake.close()
    events_stored, jobs = fast
    assert [state for _key, state, *_ in events_stored].count("ignored") == 1 + 3  # no read; beyond the bound
    assert sorted(job.split(",")[0] for job in jobs) == ["('catch_up'"] + ["('webhook_event'"] * 5


async def test_a_refused_statement_is_a_503_stores_nothing_and_keeps_the_connection(runtime, standin,
                                                                                   monkeypatch):
    events = await seeded_batch(runtime, standin)
    intake = EventIntake(runtime)
    writer = intake._pg[intake._lane(events[4])]
    try:
        assert await store(intake, runtime, events[4:5]) == [True]
        connection = writer._db
        monkeypatch.setattr("service.background.webhooks.pg_intake._INSERT_JOBS", "INSERT INTO no_such_table VALUES (1)")
        with pytest.raises(asyncpg.PostgresError):
            await store(intake, runtime, events[5:6])  # the same athlete, so the same lane
        assert writer._db is connection and connection is not None and not connection.is_closed()  # still usable
        assert len(await all_events(runtime)) == 1  # the event of the failed batch was rolled back with it
        monkeypatch.undo()
        assert await store(intake, runtime, events[5:6]) == [True]
    finally:
        await intake.close()


async def test_a_lost_connection_is_a_503_and_the_next_batch_reconnects(runtime, standin, caplog, monkeypatch):
    events = await seeded_batch(runtime, standin)
    intake = EventIntake(runtime)
    writer = intake._pg[intake._lane(events[0])]
    try:
        assert await store(intake, runtime, events[:1]) == [True]
        lost = writer._db
        assert lost is not None

        def reset(*args, **kwargs):
            raise ConnectionResetError("connection reset by peer")

        monkeypatch.setattr(PgEventWriter, "_event_columns", reset)  # the socket fails mid-batch
        await intake._write([_Pending(events[3], runtime.clock.now(), answer := _future())])  # same athlete
        with pytest.raises(IntakeUnavailable):
            answer.result()
        assert "webhook event" in caplog.text and "Traceback" not in caplog.text
        assert writer._db is None and lost.is_closed()  # dropped, not reused
        monkeypatch.undo()
        assert await store(intake, runtime, events[3:4]) == [True]  # a fresh connection

        # The server ends the intake's session (a restart, a failover): the next batch still lands.
        async with runtime.engine.connect() as conn:
            await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": writer._db.get_server_pid()})
        for attempt in range(2):  # at most one 503 (Strava delivers again), then stored
            try:
                assert await store(intake, runtime, events[:1] + [events[2]]) == [False, True]
                break
            except Exception:  # noqa: BLE001 - whichever way asyncpg notices the session is gone
                assert attempt == 0
    finally:
        await intake.close()


def _future():
    import asyncio

    return asyncio.get_running_loop().create_future()


async def test_an_athletes_events_always_take_the_same_lane(runtime, standin):
    """The pending bound and the single catch-up are decided per batch from the jobs already
    committed: two lanes storing the same athlete's events at once could both see room under the
    bound. So the lane is a function of the athlete alone, and athletes spread over every lane."""
    events = [parse_event(json.dumps({**standin.event("create", "activity", 7_200_000 + i, owner, {}),
                                      "subscription_id": 1}).encode())
              for owner in range(1_000, 1_040) for i in range(3)]
    intake = EventIntake(runtime)
    try:
        lanes: dict[int, set[int]] = {}
        for event in events:
            lanes.setdefault(event.owner_id, set()).add(intake._lane(event))
        assert all(len(used) == 1 for used in lanes.values())
        assert set().union(*lanes.values()) == set(range(PG_LANES))
    finally:
        await intake.close()
