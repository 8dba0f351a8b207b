"""service.core.audit_batch: audit entries stored in batches off the request path, none lost on a
clean shutdown, and a failing database costs the entries of one batch, never the caller."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager

from sqlalchemy import event, select
from sqlalchemy.exc import OperationalError

from service.app.bootstrap import open_runtime
from service.core.audit_batch import AuditBatch
from service.db.models import AuditEntry
from tests.conftest import make_settings


async def stored(runtime) -> list[AuditEntry]:
    async with runtime.sessions() as session:
        return list((await session.execute(select(AuditEntry).order_by(AuditEntry.id))).scalars())


async def test_a_burst_is_stored_in_a_few_transactions_in_order(runtime):
    commits = []
    event.listen(runtime.engine.sync_engine, "commit", lambda conn: commits.append(1))
    batch = runtime.part(AuditBatch)
    for n in range(300):
        batch.record("token-api", "access_token", f"user{n}@example.com", "ok", None, 1)
    assert await stored(runtime) == []  # record() only queues: the caller never waits for the database
    await batch.flush()
    entries = await stored(runtime)
    assert [e.target for e in entries] == [f"user{n}@example.com" for n in range(300)]
    assert {(e.actor, e.action, e.result) for e in entries} == {("token-api", "access_token", "ok")}
    assert len(commits) <= 2


async def test_outside_text_is_stored_safely(runtime):
    batch = runtime.part(AuditBatch)
    batch.record("token-api", "access_token", "bad\x00target" + "x" * 1000, "bad_request", "detail\udcff")
    await batch.flush()
    [entry] = await stored(runtime)
    assert "\x00" not in entry.target and len(entry.target) == 320 and "\udcff" not in entry.detail


async def test_closing_the_runtime_stores_what_was_queued(database_url, standin, clock, runtime):
    other = await open_runtime(make_settings(database_url, standin), clock)
    for n in range(5):
        other.part(AuditBatch).record("token-api", "access_token", f"late{n}@example.com", "ok")
    await other.close()
    assert len(await stored(runtime)) == 5


async def test_a_failing_database_drops_one_batch_with_a_warning_not_the_caller(runtime, caplog, monkeypatch):
    batch = runtime.part(AuditBatch)

    @asynccontextmanager
    async def broken():
        raise OperationalError("INSERT", {}, Exception("database is down"))
        yield

    monkeypatch.setattr(runtime, "write", broken)
    batch.record("token-api", "access_token", "lost@example.com", "ok")
    await batch.flush()
    assert [r.levelno for r in caplog.records if "audit" in r.getMessage()] == [logging.WARNING]
    assert "OperationalError" in caplog.text and "lost@example.com" not in caplog.text
    monkeypatch.undo()
    batch.record("token-api", "access_token", "kept@example.com", "ok")
    await batch.flush()
    assert [e.target for e in await stored(runtime)] == ["kept@example.com"]
