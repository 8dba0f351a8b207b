"""The support views read through indexes (issue 13: "indexed queries only"). On SQLite, every
statement a history page, an affected report and a diagnosis run is explained (EXPLAIN QUERY PLAN):
none may read a whole table, and the newest-event look-ups may not sort.

The kind of fault this guards: `WHERE state = 'processed' ORDER BY received_at DESC LIMIT 1` made
SQLite pick ix_events_state and sort every processed event (350 ms at 1,000,000 events) — in the
diagnosis' app-wide row and in `affected webhook_silent` alike.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event

from service.db.models import Base
from service.desk.affected import AFFECTED_FINDINGS
from service.desk.fact_queries import newest_heard
from service.desk.support_desk import SupportDesk
from tests.dbutil import backend
from tests.integration.test_affected import population  # noqa: F401 - the fixture
from tests.integration.test_history import alice  # noqa: F401 - the fixture

pytestmark = pytest.mark.skipif(backend() != "sqlite", reason="SQLite's planner; PostgreSQL plans by statistics")

# A plan step that reads a whole table rather than a range of an index.
WHOLE_TABLE = re.compile(r"^SCAN (?!CONSTANT ROW)(\w+)(?! USING COVERING INDEX)(?!.*USING (COVERING )?INDEX)")


@contextmanager
def statements(rt: Any) -> Iterator[list[tuple[str, Any]]]:
    seen: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append((statement, parameters))

    engine = rt.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


async def plans(rt: Any, seen: list[tuple[str, Any]]) -> list[tuple[str, list[str]]]:
    out = []
    async with rt.engine.connect() as conn:
        raw = await conn.get_raw_connection()
        for statement, parameters in seen:
            cursor = await raw.driver_connection.execute("EXPLAIN QUERY PLAN " + statement, parameters)
            out.append((statement, [row[3] for row in await cursor.fetchall()]))
    return out


def whole_table_reads(explained: list[tuple[str, list[str]]]) -> list[tuple[str, str]]:
    """Steps that read a whole table of ours (a subquery's own result may be scanned)."""
    tables = set(Base.metadata.tables)
    return [(step, statement) for statement, steps in explained for step in steps
            if (found := WHOLE_TABLE.match(step)) and found.group(1) in tables]


async def test_the_newest_heard_event_is_read_along_its_index_without_sorting(runtime) -> None:
    with statements(runtime) as seen:
        async with runtime.sessions() as session:
            await session.execute(newest_heard())
    [(_, steps)] = await plans(runtime, seen)
    assert any("ix_events_received" in s for s in steps) and not any("TEMP B-TREE" in s for s in steps), steps


async def test_a_diagnosis_reads_no_whole_table_and_sorts_no_events(runtime, alice) -> None:  # noqa: F811
    with statements(runtime) as seen:
        await SupportDesk(runtime).diagnose("alice@example.com")
    explained = await plans(runtime, seen)
    assert whole_table_reads(explained) == []
    app_wide = [steps for statement, steps in explained if "ORDER BY webhook_events.received_at DESC" in statement]
    assert app_wide, "the diagnosis no longer looks up the newest event app-wide: update this test"
    for steps in app_wide:
        assert any("ix_events_received" in s for s in steps) and not any("TEMP B-TREE" in s for s in steps), steps


async def test_a_history_page_reads_only_index_ranges(runtime, alice) -> None:  # noqa: F811
    desk = SupportDesk(runtime)
    first = await desk.history.page("alice@example.com", 5)
    with statements(runtime) as seen:
        await desk.history.page("alice@example.com", 5, first.next_before)
    explained = await plans(runtime, seen)
    assert len(explained) == 9  # the user, one read per source (the audit log: by e-mail and by athlete id)
    assert whole_table_reads(explained) == []
    for statement, steps in explained[1:]:
        assert any(s.startswith("SEARCH") for s in steps), (steps, statement)


@pytest.mark.parametrize("finding", AFFECTED_FINDINGS)
async def test_an_affected_report_reads_no_whole_table(runtime, population, finding) -> None:  # noqa: F811
    with statements(runtime) as seen:
        await SupportDesk(runtime).affected.report(finding)
    assert whole_table_reads(await plans(runtime, seen)) == []
