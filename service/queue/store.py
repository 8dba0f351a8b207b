"""The retry queue on the `jobs` table: enqueue, atomic claim with a lease, and every way a run ends.

Claiming is one UPDATE over a candidate sub-select: `FOR UPDATE SKIP LOCKED` on PostgreSQL, so
replicas never wait on or double-claim a row; on SQLite the statement itself runs under the
database write lock, which makes the same UPDATE atomic. A claim is a lease (`claimed_until`): a
job whose worker died is claimed again once the lease runs out. `attempts` counts claims, so a job
that keeps killing its worker is still parked eventually; a run refused for rate limits gives its
attempt back.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, and_, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from service.core.backoff import exponential_backoff
from service.db.dialect import insert_for
from service.db.models import Job
from troubleshooting.vocabulary import JOB_STATES, JobState

QUEUED, RUNNING, DONE, FAILED = JobState.QUEUED, JobState.RUNNING, JobState.DONE, JobState.FAILED
STATES = JOB_STATES
WAITING_RATE_LIMIT = "rate_limit"
WAITING_RETRY = "retry"
WAITING_EVENT_CAP = "event_cap"  # the per-athlete cap on Strava calls that check unsigned events

# Lower runs first.
PRIORITY_INTERACTIVE = 0
PRIORITY_EVENT = 10
PRIORITY_CATCH_UP = 50

LEASE = timedelta(seconds=60)  # default; the worker uses FITGLUE_JOB_LEASE_S and renews it while running
BACKOFF_BASE_S = 30
BACKOFF_MAX_S = 3600

_J = cast(Table, Job.__table__)

# Opens one write transaction: `Runtime.write` (on SQLite it queues writers of this process on a lock
# instead of leaving them to SQLite's sleeping busy handler).
Writer = Callable[[], AbstractAsyncContextManager[AsyncSession]]


@dataclass(frozen=True)
class ClaimedJob:
    id: int
    kind: str
    payload: dict[str, Any]
    attempts: int
    user_id: int | None
    claimed_by: str = ""


@dataclass
class BatchResult:
    """How a batch handler's run ended for the jobs it did not settle itself: failures by job id
    (the worker retries, defers or parks each as for a single job) and jobs handed back untouched."""
    failures: dict[int, BaseException] = field(default_factory=dict)
    released: list[ClaimedJob] = field(default_factory=list)


# A handler that already marked its job done in its own transaction returns this (one write fewer).
SETTLED = object()


def backoff_after(attempts: int) -> timedelta:
    """30 s, 1 min, 2 min … after the 1st, 2nd, 3rd failed attempt, capped at an hour."""
    return exponential_backoff(attempts, BACKOFF_BASE_S, BACKOFF_MAX_S)


def job_row(kind: str, payload: Mapping[str, Any], now: datetime, *, priority: int = PRIORITY_EVENT,
            dedupe_key: str | None = None, user_id: int | None = None,
            run_after: datetime | None = None) -> dict[str, Any]:
    return {"kind": kind, "payload": json.dumps(dict(payload), sort_keys=True), "priority": priority,
            "run_after": run_after or now, "attempts": 0, "state": QUEUED, "user_id": user_id,
            "dedupe_key": dedupe_key, "created_at": now, "updated_at": now}


async def enqueue(session: AsyncSession, kind: str, payload: Mapping[str, Any], now: datetime, *,
                  priority: int = PRIORITY_EVENT, dedupe_key: str | None = None, user_id: int | None = None,
                  run_after: datetime | None = None) -> int | None:
    """Add a job in the caller's transaction; None when a job with `dedupe_key` exists already."""
    row = job_row(kind, payload, now, priority=priority, dedupe_key=dedupe_key, user_id=user_id,
                  run_after=run_after)
    insert = insert_for(session)
    stmt = insert(Job).values(**row).on_conflict_do_nothing(index_elements=["dedupe_key"]).returning(Job.id)
    return (await session.execute(stmt)).scalar_one_or_none()


def _claimable(now: datetime) -> Any:
    return or_(and_(_J.c.state == QUEUED, _J.c.run_after <= now),
               and_(_J.c.state == RUNNING, _J.c.claimed_until < now))


async def claim(write: Writer, now: datetime, worker_id: str, limit: int,
                lease: timedelta = LEASE) -> list[ClaimedJob]:
    # A MATERIALIZED CTE on PostgreSQL: as a plain `IN (subquery)` the planner may rescan the
    # LIMIT ... FOR UPDATE SKIP LOCKED subquery once per outer row (a nested-loop semi join on a
    # small queue), each rescan skipping the rows just updated, so one claim took every due job
    # whatever the limit (12 of 12 asked for 8). Materialized, the subquery runs once.
    candidates = (select(_J.c.id).where(_claimable(now))
                  .order_by(_J.c.priority, _J.c.run_after, _J.c.id).limit(limit)
                  .with_for_update(skip_locked=True)
                  .cte("candidates").prefix_with("MATERIALIZED", dialect="postgresql"))
    stmt = (update(_J).where(_J.c.id.in_(select(candidates.c.id)), _claimable(now))
            .values(state=RUNNING, claimed_by=worker_id, claimed_until=now + lease, attempts=_J.c.attempts + 1,
                    updated_at=now)
            .returning(_J.c.id, _J.c.kind, _J.c.payload, _J.c.attempts, _J.c.user_id))
    async with write() as session:
        rows = (await session.execute(stmt)).all()
    jobs = [ClaimedJob(r.id, r.kind, _load(r.payload), r.attempts, r.user_id, worker_id) for r in rows]
    return sorted(jobs, key=lambda j: j.id)


def _load(payload: str | None) -> dict[str, Any]:
    try:
        value = json.loads(payload or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


async def _settle(write: Writer, job_id: int, worker_id: str,
                  **values: Any) -> bool:
    """Update a job this worker still holds; False when its lease was lost to another worker."""
    values.setdefault("claimed_by", None)
    values.setdefault("claimed_until", None)
    async with write() as session:
        result = await session.execute(
            update(_J).where(_J.c.id == job_id, _J.c.state == RUNNING, _J.c.claimed_by == worker_id)
            .values(**values))
        return result.rowcount == 1  # type: ignore[attr-defined]


def done_values(now: datetime) -> dict[str, Any]:
    """The columns of a job that finished."""
    return {"state": DONE, "finished_at": now, "updated_at": now, "waiting_for": None, "claimed_by": None,
            "claimed_until": None}


async def mark_done(write: Writer, job_id: int, worker_id: str, now: datetime) -> bool:
    return await _settle(write, job_id, worker_id, **done_values(now))


async def mark_done_in(session: AsyncSession, job: ClaimedJob, now: datetime) -> bool:
    """Mark a claimed job done inside the handler's own transaction (then return SETTLED)."""
    result = await session.execute(
        update(_J).where(_J.c.id == job.id, _J.c.state == RUNNING, _J.c.claimed_by == job.claimed_by)
        .values(**done_values(now)))
    return result.rowcount == 1  # type: ignore[attr-defined]


async def mark_done_many_in(session: AsyncSession, jobs: list[ClaimedJob], now: datetime) -> None:
    """Mark claimed jobs done in the caller's transaction (a batch settling together); a job whose
    lease was lost to another worker stays with that worker."""
    by_worker: dict[str, list[int]] = {}
    for job in jobs:
        by_worker.setdefault(job.claimed_by, []).append(job.id)
    for worker_id, ids in sorted(by_worker.items()):
        await session.execute(update(_J).where(_J.c.id.in_(ids), _J.c.state == RUNNING, _J.c.claimed_by == worker_id)
                              .values(**done_values(now)))


async def defer(write: Writer, job_id: int, worker_id: str, now: datetime, until: datetime,
                waiting_for: str, message: str) -> bool:
    """Back to the queue until `until`; the attempt is given back (waiting is not failing)."""
    return await _settle(write, job_id, worker_id, state=QUEUED, run_after=until, waiting_for=waiting_for,
                         attempts=_J.c.attempts - 1, last_error=message[:1000], updated_at=now)


async def defer_for_rate_limit(write: Writer, job_id: int, worker_id: str,
                               now: datetime, resets_at: datetime, message: str) -> bool:
    """Back to the queue until the window resets; the attempt is given back (a 429 is not a failure)."""
    return await defer(write, job_id, worker_id, now, resets_at, WAITING_RATE_LIMIT, message)


async def retry_or_park(write: Writer, job: ClaimedJob, worker_id: str,
                        now: datetime, error: str, max_attempts: int, permanent: bool = False) -> str:
    """After a failed run: queue it again with backoff, or park it as failed. The new state."""
    if permanent or job.attempts >= max_attempts:
        await _settle(write, job.id, worker_id, state=FAILED, finished_at=now, updated_at=now,
                      waiting_for=None, last_error=error[:1000])
        return FAILED
    await _settle(write, job.id, worker_id, state=QUEUED, run_after=now + backoff_after(job.attempts),
                  waiting_for=WAITING_RETRY, last_error=error[:1000], updated_at=now)
    return QUEUED


async def renew_leases(write: Writer, worker_id: str, job_ids: list[int],
                       now: datetime, lease: timedelta) -> int:
    """Extend this worker's claims on the jobs it is still running (its heartbeat)."""
    if not job_ids:
        return 0
    async with write() as session:
        result = await session.execute(
            update(_J).where(_J.c.id.in_(job_ids), _J.c.state == RUNNING, _J.c.claimed_by == worker_id)
            .values(claimed_until=now + lease))
        return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def release(write: Writer, job_id: int, worker_id: str, now: datetime) -> bool:
    """Give a claimed job back untouched (shutdown): due at once, its attempt returned."""
    return await _settle(write, job_id, worker_id, state=QUEUED, attempts=_J.c.attempts - 1, updated_at=now)


async def requeue(session: AsyncSession, job_ids: list[int] | None, now: datetime) -> list[int]:
    """Failed (or waiting) jobs due now again with a fresh set of attempts; running and done stay.
    None means every failed job."""
    condition = _J.c.state == FAILED if job_ids is None else and_(_J.c.id.in_(job_ids),
                                                                   _J.c.state.in_((FAILED, QUEUED)))
    stmt = (update(_J).where(condition)
            .values(state=QUEUED, run_after=now, attempts=0, waiting_for=None, finished_at=None, updated_at=now)
            .returning(_J.c.id))
    return sorted(r[0] for r in (await session.execute(stmt)).all())


async def prune_done(session: AsyncSession, before: datetime) -> int:
    result = await session.execute(delete(_J).where(_J.c.state == DONE, _J.c.finished_at < before))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
