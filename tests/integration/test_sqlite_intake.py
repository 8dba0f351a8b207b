"""The SQLite intake (service/background/webhooks/sqlite_intake.py, the standard `sqlite3` module in a
thread of its own) stores exactly what the SQLAlchemy reference path stores, odd values included:
non-ASCII and control characters, escapes, the largest ids. Both paths write the rows by hand-kept
SQL, so nothing but this comparison keeps them in step."""

from __future__ import annotations

import json
import sqlite3

import pytest
from sqlalchemy import delete

from service.background.webhooks.intake import EventIntake
from service.background.webhooks.sqlite_intake import SqliteEventWriter
from service.background.webhooks.strava_events import MAX_ID, parse_event
from service.db.models import Job, WebhookEvent
from tests.dbutil import backend
from tests.webhook_support import all_events, seeded_batch, snapshot, store

pytestmark = pytest.mark.skipif(backend() != "sqlite", reason="the sqlite3 intake is SQLite's")

ODD_TEXT = "Ünïcödé 🏃‍♀️ \u2028 \u0001 tab\t quote\" backslash\\ 中文 \ufeff"


def odd_events(standin, owner: int) -> list:
    """Values two storage paths could disagree on: non-ASCII and control characters, escapes, the
    largest ids, an update that looks like a number."""
    bodies = [standin.event("update", "activity", MAX_ID, owner, {"title": ODD_TEXT, "type": "Run"}),
              standin.event("update", "activity", 7_300_001, MAX_ID, {"private": "true", "n": "12345678901234567890"}),
              {**standin.event("create", "activity", 7_300_002, owner, {}), "event_time": MAX_ID}]
    return [parse_event(json.dumps({**body, "subscription_id": MAX_ID}).encode()) for body in bodies]


async def test_the_sqlite3_intake_stores_what_the_sqlalchemy_intake_stores(runtime, standin):
    runtime.settings = runtime.settings.replaced(pending_events_per_athlete=2)
    events = await seeded_batch(runtime, standin)
    events += odd_events(standin, events[0].owner_id)
    intake = EventIntake(runtime)
    assert isinstance(intake._sqlite, SqliteEventWriter)
    try:
        through_sqlite3 = await store(intake, runtime, events)
        assert through_sqlite3 == [True] * 9 + [False] + [True] * 3
        assert await store(intake, runtime, events[:3] + events[-1:]) == [False] * 4  # redeliveries
        fast = await snapshot(runtime)
        async with runtime.write() as session:
            await session.execute(delete(Job))
            await session.execute(delete(WebhookEvent))
        intake._sqlite = None  # the SQLAlchemy reference path
        assert await store(intake, runtime, events) == through_sqlite3
        assert await snapshot(runtime) == fast
    finally:
        await intake.close()
    stored = {event.object_id: event for event in await all_events(runtime)}
    assert json.loads(stored[MAX_ID].updates) == {"title": ODD_TEXT, "type": "Run"}
    assert stored[7_300_001].owner_id == MAX_ID and stored[7_300_002].event_time == MAX_ID
    events_stored, jobs = fast
    assert [state for _key, state, *_ in events_stored].count("ignored") == 1 + 3 + 1  # no read; beyond the bound (flooded, then full)
    assert sorted(job.split(",")[0] for job in jobs) == ["('catch_up'"] * 2 + ["('webhook_event'"] * 7


async def test_a_failed_statement_rolls_the_whole_batch_back_and_the_next_batch_lands(runtime, standin,
                                                                                     monkeypatch):
    events = await seeded_batch(runtime, standin)
    intake = EventIntake(runtime)
    try:
        assert await store(intake, runtime, events[:1]) == [True]
        monkeypatch.setattr("service.background.webhooks.sqlite_intake._INSERT_JOB",
                            "INSERT INTO no_such_table VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
        with pytest.raises(sqlite3.OperationalError):
            await store(intake, runtime, events[4:6])
        assert len(await all_events(runtime)) == 1  # the failed batch's events were rolled back with it
        monkeypatch.undo()
        assert await store(intake, runtime, events[4:6]) == [True, True]
    finally:
        await intake.close()
