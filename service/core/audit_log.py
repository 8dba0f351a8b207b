"""The audit log: every operator action, with who, what, on whom, the result and how long it took."""

from __future__ import annotations

import getpass
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.core.clock import Clock
from service.core.inputs import MAX_LIMIT, storable
from service.db.models import AuditEntry


def cli_actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # no passwd entry in some containers
        return "cli:unknown"


def entry_values(clock: Clock, actor: str, action: str, target: str | None, result: str,
                 detail: str | None = None, duration_ms: int | None = None) -> dict[str, Any]:
    """The columns of one audit entry, stamped now. Targets and details may come from outside (Slack
    text, a path, a request body): stored as safely as they can be."""
    return {"at": clock.now(), "actor": storable(actor, 200) or "", "action": storable(action, 60) or "",
            "target": storable(target, 320), "result": storable(result, 40) or "",
            "detail": storable(detail, 100_000), "duration_ms": duration_ms}


def add_entry(session: AsyncSession, clock: Clock, actor: str, action: str, target: str | None, result: str,
              detail: str | None = None, duration_ms: int | None = None) -> None:
    session.add(AuditEntry(**entry_values(clock, actor, action, target, result, detail, duration_ms)))


async def add_entry_now(sessions: async_sessionmaker[AsyncSession], clock: Clock, actor: str, action: str,
                        target: str | None, result: str, detail: str | None = None,
                        duration_ms: int | None = None) -> None:
    """Write one entry in its own transaction (committed when this returns)."""
    async with sessions() as session, session.begin():
        add_entry(session, clock, actor, action, target, result, detail, duration_ms)


@dataclass
class AuditOutcome:
    result: str = "ok"
    detail: str | None = None


@asynccontextmanager
async def audited(sessions: async_sessionmaker[AsyncSession], clock: Clock, actor: str, action: str,
                  target: str | None) -> AsyncIterator[AuditOutcome]:
    """Times the block and writes one audit entry in its own transaction, also when the block fails."""
    outcome = AuditOutcome()
    started = time.monotonic()
    try:
        yield outcome
    except BaseException as exc:
        if outcome.result == "ok":
            outcome.result = "error"
            outcome.detail = outcome.detail or type(exc).__name__
        raise
    finally:
        duration = int((time.monotonic() - started) * 1000)
        await add_entry_now(sessions, clock, actor, action, target, outcome.result, outcome.detail, duration)


MAX_LISTED = MAX_LIMIT  # callers refuse more (service.core.inputs.parse_limit); this only guards the query


async def list_entries(sessions: async_sessionmaker[AsyncSession], limit: int = 50, *, before_id: int | None = None,
                       actor: str | None = None, action: str | None = None,
                       target: str | None = None) -> list[AuditEntry]:
    """The newest entries first (by id, which follows time), optionally filtered; page with before_id."""
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(max(1, min(limit, MAX_LISTED)))
    if before_id is not None:
        query = query.where(AuditEntry.id < before_id)
    if actor:
        query = query.where(AuditEntry.actor == actor)
    if action:
        query = query.where(AuditEntry.action == action)
    if target:
        query = query.where(func.lower(AuditEntry.target) == target.strip().lower())
    async with sessions() as session:
        return list((await session.execute(query)).scalars().all())
