"""Claiming due outbound events for delivery, and settling each attempt.

Claiming is one UPDATE over a candidate sub-select, like the job queue's (`service.queue.store`):
`FOR UPDATE SKIP LOCKED` on PostgreSQL, so workers on several replicas never take the same row; on
SQLite the statement runs under the database write lock. A claim is a lease (`claimed_until`): a
row whose worker died is taken up again once it runs out.

In order per athlete: a row is due only while no earlier row of its athlete is still pending
(being sent, or waiting for its next attempt). A parked (failed) row no longer holds the later
ones back. Events without an athlete (an erasure of a user who never connected) have no order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, and_, case, exists, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from service.db.models import OutboundEvent
from service.outbox.event_types import DELIVERED, FAILED, PENDING

Writer = Callable[[], AbstractAsyncContextManager[AsyncSession]]
_O = cast(Table, OutboundEvent.__table__)
MAX_ERROR = 1000


@dataclass(frozen=True)
class ClaimedEvent:
    id: int
    webhook_id: str
    type: str
    body: str
    attempts: int  # attempts made before this one
    athlete_id: int | None


def _free(now: datetime) -> Any:
    return or_(_O.c.claimed_until.is_(None), _O.c.claimed_until < now)


def _due(now: datetime) -> Any:
    earlier = aliased(OutboundEvent)
    held_back = exists().where(earlier.athlete_id == _O.c.athlete_id, earlier.state == PENDING,
                               earlier.id < _O.c.id)
    return and_(_O.c.state == PENDING, _O.c.next_attempt_at <= now, _free(now), ~held_back)


async def claim_due(write: Writer, now: datetime, worker_id: str, limit: int,
                    lease: timedelta) -> list[ClaimedEvent]:
    """Lease up to `limit` due events (oldest first, at most one per athlete); sorted by id."""
    # MATERIALIZED on PostgreSQL, as in queue.store.claim: a plain IN (subquery) may be rescanned
    # per row, each rescan skipping what was just claimed, so one claim could exceed `limit`.
    candidates = (select(_O.c.id).where(_due(now)).order_by(_O.c.id).limit(limit)
                  .with_for_update(skip_locked=True, of=_O)
                  .cte("candidates").prefix_with("MATERIALIZED", dialect="postgresql"))
    stmt = (update(_O).where(_O.c.id.in_(select(candidates.c.id)), _O.c.state == PENDING, _free(now))
            .values(claimed_by=worker_id, claimed_until=now + lease)
            .returning(_O.c.id, _O.c.webhook_id, _O.c.type, _O.c.body, _O.c.attempts, _O.c.athlete_id))
    async with write() as session:
        rows = (await session.execute(stmt)).all()
    return sorted((ClaimedEvent(*row) for row in rows), key=lambda e: e.id)


@dataclass(frozen=True)
class Attempt:
    """How one delivery attempt ended: `error` None for a 2xx."""

    event: ClaimedEvent
    error: str | None = None


def next_attempt_after(attempts: int, schedule: Sequence[int]) -> timedelta | None:
    """The wait after the `attempts`-th failed attempt (1-based), or None when the schedule is used
    up and the event is parked."""
    if attempts < 1 or attempts > len(schedule):
        return None
    return timedelta(seconds=schedule[attempts - 1])


async def settle(write: Writer, worker_id: str, now: datetime, attempts: Sequence[Attempt],
                 schedule: Sequence[int]) -> list[ClaimedEvent]:
    """Record a round of attempts in one transaction (only rows this worker still holds): delivered,
    due again after the schedule's next wait, or parked as failed. The events parked now."""
    mine = and_(_O.c.state == PENDING, _O.c.claimed_by == worker_id)
    delivered = [a.event.id for a in attempts if a.error is None]
    parked: list[ClaimedEvent] = []
    async with write() as session:
        if delivered:
            await session.execute(update(_O).where(_O.c.id.in_(delivered), mine).values(
                state=DELIVERED, delivered_at=now, updated_at=now, attempts=_O.c.attempts + 1, last_error=None,
                next_attempt_at=None, claimed_by=None, claimed_until=None))
        for attempt in attempts:
            if attempt.error is None:
                continue
            made = attempt.event.attempts + 1
            wait = next_attempt_after(made, schedule)
            values: dict[str, Any] = {"attempts": made, "last_error": attempt.error[:MAX_ERROR], "updated_at": now,
                                      "claimed_by": None, "claimed_until": None}
            if wait is None:
                values.update(state=FAILED, failed_at=now, next_attempt_at=None)
            else:
                values.update(next_attempt_at=now + wait)
            result = await session.execute(update(_O).where(_O.c.id == attempt.event.id, mine).values(**values))
            if wait is None and result.rowcount:  # type: ignore[attr-defined]
                parked.append(attempt.event)
    return parked


async def release(write: Writer, worker_id: str, event_ids: Sequence[int]) -> None:
    """Give claimed events back untouched (shutdown): due again at once."""
    if not event_ids:
        return
    async with write() as session:
        await session.execute(update(_O).where(_O.c.id.in_(list(event_ids)), _O.c.claimed_by == worker_id)
                              .values(claimed_by=None, claimed_until=None))


def state_order() -> Any:
    """Pending first, then failed, then delivered (for views that mix them)."""
    return case((_O.c.state == PENDING, 0), (_O.c.state == FAILED, 1), else_=2)
