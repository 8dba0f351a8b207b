"""The outbox for people and checks: listing events (`fitglue events`, admin `GET events`), retrying
parked ones, replaying delivered ones with new ids, the health figures (App Home, /metrics), one
user's undelivered events (the `events_undelivered` finding) and retention."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, false, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from service.core.clock import iso_utc
from service.core.settings import Settings
from service.db.models import OutboundEvent
from service.outbox.event_types import DELIVERED, FAILED, PENDING
from service.outbox.writing import write_event

REPLAY_CHUNK = 500


@dataclass(frozen=True)
class EventView:
    id: int
    webhook_id: str
    type: str
    athlete_id: int | None
    state: str
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    replay_of: str | None



async def list_events(session: AsyncSession, *, state: str | None = None, athlete_id: int | None = None,
                      limit: int = 100, before: int | None = None) -> list[EventView]:
    """Events newest first; `before` is the id of the last row of the previous page."""
    query = select(OutboundEvent).order_by(OutboundEvent.id.desc()).limit(limit)
    if state is not None:
        query = query.where(OutboundEvent.state == state)
    if athlete_id is not None:
        query = query.where(OutboundEvent.athlete_id == athlete_id)
    if before is not None:
        query = query.where(OutboundEvent.id < before)
    return [EventView(e.id, e.webhook_id, e.type, e.athlete_id, e.state, e.attempts, e.next_attempt_at,
                      e.last_error, e.created_at, e.delivered_at, e.replay_of)
            for e in (await session.execute(query)).scalars()]


async def event_exists(session: AsyncSession, event_id: int) -> bool:
    return (await session.get(OutboundEvent, event_id)) is not None


async def retry_events(session: AsyncSession, now: datetime, event_id: int | None = None) -> int:
    """Make parked (failed) events due now with a fresh schedule (one, or all when `event_id` is
    None); a pending one waiting for its next attempt becomes due now too. How many."""
    if event_id is None:
        condition = OutboundEvent.state == FAILED
    else:
        condition = and_(OutboundEvent.id == event_id, OutboundEvent.state.in_((FAILED, PENDING)))
    result = await session.execute(update(OutboundEvent).where(condition).values(
        state=PENDING, next_attempt_at=now, attempts=0, failed_at=None, updated_at=now))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def _with_replay_of(body: str, original: str) -> tuple[str, dict[str, Any]]:
    parsed = json.loads(body)
    data = dict(parsed.get("data") or {})
    data["replay_of"] = original
    return parsed["type"], data


async def replay_events(session: AsyncSession, settings: Settings, now: datetime, since: datetime,
                        athlete_id: int | None = None) -> int:
    """Queue every delivered original event created at or after `since` (one athlete's, or all)
    again, oldest first, each with a new webhook-id and `data.replay_of` naming the original id.
    The replay keeps the original's timestamp. How many.

    The originals are read REPLAY_CHUNK at a time (by id, after the last one read), not all at once:
    a month of delivered events can be more than the process should hold. The replays written
    meanwhile have `replay_of` set, so they are never read as originals; and only the originals there
    were when the replay began are read: on PostgreSQL each chunk's read also sees the events others
    delivered since, which would be sent twice (and under steady traffic the replay chased them).
    """
    last_id = (await session.execute(select(func.max(OutboundEvent.id)))).scalar() or 0
    query = (select(OutboundEvent).where(OutboundEvent.state == DELIVERED, OutboundEvent.created_at >= since,
                                         OutboundEvent.replay_of.is_(None), OutboundEvent.id <= last_id)
             .order_by(OutboundEvent.id).limit(REPLAY_CHUNK))
    if athlete_id is not None:
        query = query.where(OutboundEvent.athlete_id == athlete_id)
    replayed, after = 0, 0
    while originals := (await session.execute(query.where(OutboundEvent.id > after))).scalars().all():
        for original in originals:
            event_type, data = _with_replay_of(original.body, original.webhook_id)
            # The state change happened then, not now: the body keeps its time.
            written = await write_event(session, settings, original.created_at, event_type, data,
                                        athlete_id=original.athlete_id, user_id=original.user_id,
                                        replay_of=original.webhook_id)
            if written is not None:
                await session.execute(update(OutboundEvent).where(OutboundEvent.id == written).values(
                    created_at=now, next_attempt_at=now, updated_at=now))
                replayed += 1
        after = originals[-1].id  # (the session's identity map holds rows weakly: a chunk read is let go)
    return replayed


@dataclass(frozen=True)
class OutboxHealth:
    pending: int
    failed: int
    oldest_pending_at: datetime | None
    last_delivered_at: datetime | None

    def oldest_pending_age_s(self, now: datetime) -> float | None:
        return None if self.oldest_pending_at is None else max(0.0, (now - self.oldest_pending_at).total_seconds())

    def to_dict(self, now: datetime) -> dict[str, Any]:
        return {"pending": self.pending, "failed": self.failed, "oldest_pending_age_s": self.oldest_pending_age_s(now),
                "last_success_at": iso_utc(self.last_delivered_at)}


async def outbox_health(session: AsyncSession) -> OutboxHealth:
    """Pending and failed counts, the oldest pending event's creation, the last delivery."""
    counts = dict((await session.execute(select(OutboundEvent.state, func.count()).where(
        OutboundEvent.state.in_((PENDING, FAILED))).group_by(OutboundEvent.state))).all())
    oldest = await session.scalar(select(func.min(OutboundEvent.created_at)).where(OutboundEvent.state == PENDING))
    last = await session.scalar(select(func.max(OutboundEvent.delivered_at)))
    return OutboxHealth(int(counts.get(PENDING, 0)), int(counts.get(FAILED, 0)), oldest, last)


def undelivered_condition(athlete_id: Any, user_id: Any) -> Any:
    """One user's events that the receiver has not taken: parked, or pending after a failed attempt
    (a fresh pending event is simply on its way). `athlete_id` and `user_id` are values (None: not
    known) or column expressions of a correlated query."""
    owners = [OutboundEvent.athlete_id == athlete_id] if athlete_id is not None else []
    owners += [OutboundEvent.user_id == user_id] if user_id is not None else []
    owner = or_(*owners) if owners else false()
    stuck = or_(OutboundEvent.state == FAILED, and_(OutboundEvent.state == PENDING, OutboundEvent.attempts > 0))
    return and_(owner, stuck)


async def prune_delivered(session: AsyncSession, cutoff: datetime) -> int:
    result = await session.execute(delete(OutboundEvent).where(OutboundEvent.state == DELIVERED,
                                                               OutboundEvent.delivered_at < cutoff))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def prune_failed(session: AsyncSession, cutoff: datetime) -> int:
    result = await session.execute(delete(OutboundEvent).where(OutboundEvent.state == FAILED,
                                                               OutboundEvent.failed_at < cutoff))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
