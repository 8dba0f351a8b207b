"""Read-only views of the queue for people: `fitglue jobs`, the admin API, the rate-limit report."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from service.db.models import Job
from service.queue.store import QUEUED


@dataclass(frozen=True)
class JobView:
    id: int
    kind: str
    state: str
    priority: int
    attempts: int
    run_after: datetime
    waiting_for: str | None
    last_error: str | None
    user_id: int | None
    payload: dict[str, Any]
    created_at: datetime
    updated_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def of(cls, job: Job) -> JobView:
        try:
            payload = json.loads(job.payload or "{}")
        except ValueError:
            payload = {}
        return cls(job.id, job.kind, job.state, job.priority, job.attempts, job.run_after, job.waiting_for,
                   job.last_error, job.user_id, payload if isinstance(payload, dict) else {}, job.created_at,
                   job.updated_at, job.finished_at)


async def list_jobs(session: AsyncSession, state: str | None = None, limit: int = 100) -> list[JobView]:
    query = select(Job).order_by(Job.id.desc()).limit(limit)
    if state is not None:
        query = query.where(Job.state == state)
    return [JobView.of(job) for job in (await session.execute(query)).scalars()]


async def waiting_count(session: AsyncSession, user_id: int | None = None) -> int:
    """Jobs waiting to run (queued, for whatever reason), optionally only one user's."""
    query = select(func.count()).select_from(Job).where(Job.state == QUEUED)
    if user_id is not None:
        query = query.where(Job.user_id == user_id)
    return int((await session.execute(query)).scalar_one())
