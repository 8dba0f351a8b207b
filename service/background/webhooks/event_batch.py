"""A batch of claimed `webhook_event` jobs: what it reads up front and the one transaction it ends in.

`load_batch` reads, in one session and a handful of statements, everything the checks need for
every event of the batch: the events, the connections of the athletes they name (each look-up made
once per batch, however many events name the athlete), the stored owners of the activities they
name and the 404 memos. `Settlement` collects what the checks decided (summaries to keep, deletes
confirmed, 404s to remember, each event's outcome) and `settle` writes all of it, the events and
their jobs in ONE transaction: a batch of 64 events costs a few statements, not several per event.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from service.background.webhooks.activity_store import record_deleted_in, store_answers
from service.connections.tokens import access_token
from service.core.crypto import DecryptionError
from service.core.runtime import Runtime
from service.db.dialect import insert_for
from service.db.models import ActivityNotFound, ActivitySummary, StravaConnection, WebhookEvent
from service.queue.store import ClaimedJob, mark_done_many_in
from service.subscription.state import FAILED, NEW, PROCESSED

# A failed event is open again when an operator retries its parked job.
OPEN_STATES = (NEW, FAILED)
EVENTS_PROCESSED = "fitglue_webhook_events_processed_total"

_EVENTS = cast(Table, WebhookEvent.__table__)
_CONNECTIONS = cast(Table, StravaConnection.__table__)


@dataclass
class LoadedBatch:
    """What the batch's checks read, keyed for look-up (all read in one session)."""
    events: dict[int, WebhookEvent]  # event id -> the event, only those still open
    connections: dict[int, StravaConnection]  # athlete id -> their connection
    owners: dict[int, tuple[int, datetime | None]]  # activity id -> (stored athlete id, deleted at)
    memos: dict[tuple[int, int], datetime]  # (activity id, athlete id) -> when Strava answered 404
    refreshed: dict[int, str | None] = field(default_factory=dict)  # conn id -> token after a due refresh
    _tokens: dict[int, str | None] = field(default_factory=dict)

    def cached_token(self, rt: Runtime, conn: StravaConnection) -> str | None:
        """The connection's stored access token, decrypted once per batch (None: unreadable)."""
        if conn.id not in self._tokens:
            try:
                self._tokens[conn.id] = access_token(conn, rt.cipher)
            except DecryptionError:
                self._tokens[conn.id] = None
        return self._tokens[conn.id]


def event_id_of(job: ClaimedJob) -> int:
    try:
        return int(job.payload.get("event_id", 0))
    except (TypeError, ValueError):
        return 0


async def load_batch(rt: Runtime, event_ids: list[int]) -> LoadedBatch:
    async with rt.sessions() as session:
        events = {e.id: e for e in (await session.execute(
            select(WebhookEvent).where(WebhookEvent.id.in_(event_ids), WebhookEvent.state.in_(OPEN_STATES))
        )).scalars()}
        athletes = {e.owner_id for e in events.values()}
        activities = {e.object_id for e in events.values() if e.object_type == "activity"}
        connections: dict[int, StravaConnection] = {}
        if athletes:
            connections = {c.athlete_id: c for c in (await session.execute(
                select(StravaConnection).where(StravaConnection.athlete_id.in_(athletes)))).scalars()
                if c.athlete_id is not None}
        owners: dict[int, tuple[int, datetime | None]] = {}
        memos: dict[tuple[int, int], datetime] = {}
        if activities:
            owners = {row[0]: (row[1], row[2]) for row in await session.execute(
                select(ActivitySummary.id, ActivitySummary.athlete_id, ActivitySummary.deleted_at)
                .where(ActivitySummary.id.in_(activities)))}
            memos = {(row[0], row[1]): row[2] for row in await session.execute(
                select(ActivityNotFound.activity_id, ActivityNotFound.athlete_id, ActivityNotFound.answered_at)
                .where(ActivityNotFound.activity_id.in_(activities)))}
    return LoadedBatch(events, connections, owners, memos)


@dataclass
class Settlement:
    """What one batch decided, written by `settle` in one transaction."""
    activities: list[dict[str, Any]] = field(default_factory=list)  # Strava's answers to keep
    updated: set[int] = field(default_factory=set)  # activity ids fetched again for an `update` event
    deleted: set[tuple[int, int]] = field(default_factory=set)  # (activity id, athlete id) confirmed gone
    not_found: set[tuple[int, int]] = field(default_factory=set)  # (activity id, athlete id): Strava said 404
    outcomes: dict[int, tuple[str, str | None]] = field(default_factory=dict)  # event id -> (state, why)
    jobs: list[ClaimedJob] = field(default_factory=list)  # jobs finished by this batch

    def finish(self, job: ClaimedJob, event_id: int | None = None, outcome: str = PROCESSED,
               note: str | None = None) -> None:
        self.jobs.append(job)
        if event_id is not None:
            self.outcomes[event_id] = (outcome, note)


async def settle(rt: Runtime, batch: LoadedBatch, done: Settlement) -> None:
    """Write the batch's findings, its events' outcomes and its jobs (done) in one transaction."""
    now = rt.clock.now()
    async with rt.write() as session:
        await store_answers(session, rt, done.activities, done.updated)  # and their outbound events
        if done.not_found:
            stmt = insert_for(session)(ActivityNotFound).values(
                [{"activity_id": a, "athlete_id": o, "answered_at": now} for a, o in sorted(done.not_found)])
            await session.execute(stmt.on_conflict_do_update(
                index_elements=["activity_id", "athlete_id"], set_={"answered_at": now}))
        for activity_id, athlete_id in sorted(done.deleted):  # rare: one statement each, and its event
            await record_deleted_in(session, rt, activity_id, athlete_id)
        if done.outcomes:
            await session.execute(
                # (no IN in an executemany statement)
                update(_EVENTS).where(_EVENTS.c.id == bindparam("b_id"),
                                      or_(*(_EVENTS.c.state == state for state in OPEN_STATES)))
                .values(state=bindparam("b_state"), error=bindparam("b_error"), processed_at=now),
                [{"b_id": i, "b_state": s, "b_error": n} for i, (s, n) in sorted(done.outcomes.items())])
            await _heard_from(session, batch, done)
        await mark_done_many_in(session, done.jobs, now)
    for outcome, _note in done.outcomes.values():
        rt.metrics.inc(EVENTS_PROCESSED, outcome)


async def _heard_from(session: AsyncSession, batch: LoadedBatch, done: Settlement) -> None:
    """Record that Strava's events reach us for these athletes (`webhook_silent` in the diagnosis).
    Only for events Strava confirmed (processed): a forged one arrives just as easily."""
    newest: dict[int, datetime] = {}
    for event_id, (outcome, _note) in done.outcomes.items():
        event = batch.events.get(event_id)
        if outcome == PROCESSED and event is not None:
            seen = newest.get(event.owner_id)
            newest[event.owner_id] = event.received_at if seen is None else max(seen, event.received_at)
    if newest:
        await session.execute(
            update(_CONNECTIONS).where(
                _CONNECTIONS.c.athlete_id == bindparam("b_athlete"),
                or_(_CONNECTIONS.c.last_event_at.is_(None), _CONNECTIONS.c.last_event_at < bindparam("b_at")))
            .values(last_event_at=bindparam("b_at")),
            [{"b_athlete": a, "b_at": at} for a, at in sorted(newest.items())])
