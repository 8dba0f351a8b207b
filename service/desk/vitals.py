"""The service's own vital signs as plain data, for `GET /readyz` and `GET /metrics`: whether the
database answers and is migrated, how many jobs the retry queue holds, and how the outbound events
fare. Every replica reads the
same shared database, so every replica reports the same figures."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select, text

from service.core.runtime import Runtime
from service.db.migrate import is_migrated
from service.db.models import Job
from service.outbox.outbox_ops import OutboxHealth, outbox_health
from service.queue import QUEUED, STATES, WAITING_RATE_LIMIT


async def readiness(rt: Runtime) -> dict[str, str]:
    """`{"status": "ok" | "unavailable", "database": "ok" | <the failure's type name>, "migrations":
    "current" | "pending"}` (no `migrations` when the database fails). Ready only when `status` is "ok"."""
    try:
        async with rt.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        migrated = await is_migrated(rt.engine)
    except Exception as exc:  # any database failure means "not ready"
        return {"status": "unavailable", "database": type(exc).__name__}
    if not migrated:
        return {"status": "unavailable", "database": "ok", "migrations": "pending"}
    return {"status": "ok", "database": "ok", "migrations": "current"}


@dataclass(frozen=True)
class QueueFigures:
    jobs_by_state: dict[str, int]  # every job state (vocabulary.JobState, in that order), 0 when none
    waiting_for_rate_limit: int  # queued jobs held until Strava's next rate-limit window


async def queue_figures(rt: Runtime) -> QueueFigures:
    """Two queries; raises what the database raises (a scrape of /metrics then fails, visibly)."""
    async with rt.sessions() as session:
        counts = dict((await session.execute(select(Job.state, func.count()).group_by(Job.state))).all())
        waiting = (await session.execute(select(func.count()).select_from(Job).where(
            Job.state == QUEUED, Job.waiting_for == WAITING_RATE_LIMIT))).scalar_one()
    return QueueFigures({state: counts.get(state, 0) for state in STATES}, waiting)


async def outbound_figures(rt: Runtime) -> OutboxHealth:
    """Pending and parked outbound events, the oldest pending one's time, the last delivery. Raises
    what the database raises."""
    async with rt.sessions() as session:
        return await outbox_health(session)
