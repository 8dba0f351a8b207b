"""Storing incoming events durably, fast: one transaction per batch of concurrent requests.

Each POST hands its event to `EventIntake.submit` and waits. A single writer task takes whatever
has queued up (up to `max_batch`) and stores those events and one job per new event in ONE
transaction, then answers every waiting request. An event whose check is known to fail (an activity
event of an athlete who did not grant activity read) gets no job: it is stored settled, with why. While one batch commits, the next gathers, so a
burst costs a handful of commits instead of one per event, and nobody waits for a timer. A
redelivery hits the unique dedupe key and is reported as a duplicate (no second job).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import Table, bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from service.background.webhooks.pending import Connected, catch_up_row, plan_intake, waiting_catch_up_pattern
from service.background.webhooks.pg_intake import PgEventWriter, asyncpg_dsn
from service.background.webhooks.processing import IGNORED
from service.background.webhooks.sqlite_intake import SqliteEventWriter
from service.background.webhooks.strava_events import StravaEvent
from service.core.runtime import Runtime
from service.db.dialect import insert_for
from service.db.models import Job, StravaConnection, WebhookEvent
from service.queue.store import PRIORITY_EVENT, QUEUED, RUNNING, job_row
from service.subscription.cache import subscription_cache
from service.subscription.state import JOB_KIND, event_job_key

log = logging.getLogger(__name__)

_EVENTS = cast(Table, WebhookEvent.__table__)
_JOBS = cast(Table, Job.__table__)
_CONNECTIONS = cast(Table, StravaConnection.__table__)
WAITING_STATES = (QUEUED, RUNNING)  # an event job not finished yet: its event still waits to be checked
BUSY_WINDOW_S = 0.2
# Concurrent batch writers on PostgreSQL (one connection each). Two, measured on a quiet 2-core machine
# (bench/README.md): one batch commits while the next gathers; four made smaller batches, more round
# trips per event (wrk: 4,600 against 5,400 requests/s) and no better p99 at 500 events/s.
PG_LANES = 2


class IntakeUnavailable(Exception):
    """The event could not be stored (the database failed): answer 503 so Strava delivers again."""


@dataclass
class _Pending:
    event: StravaEvent
    received_at: datetime
    answer: asyncio.Future[bool]


class EventIntake:
    def __init__(self, rt: Runtime, on_stored: Callable[[], None] | None = None, max_batch: int = 256) -> None:
        self.rt = rt
        self.on_stored = on_stored
        self.max_batch = max_batch
        self._waiting = 0
        self._pressed_at: float = float("-inf")
        url = rt.engine.url
        # SQLite: the whole batch in one call into a database thread (see sqlite_intake).
        self._sqlite = (SqliteEventWriter(url.database, JOB_KIND, event_job_key)
                        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:") else None)
        # PostgreSQL over asyncpg: the batch as a handful of array statements (see pg_intake), in
        # PG_LANES writers with a connection each, so one batch's commit (its WAL flush) does not hold
        # up the next. An athlete's events always take the same lane: within this process the
        # pending bound and the catch-up are still decided one batch at a time per athlete.
        self._pg = ([PgEventWriter(asyncpg_dsn(url), JOB_KIND, event_job_key) for _ in range(PG_LANES)]
                    if url.get_backend_name() == "postgresql" and url.get_driver_name() == "asyncpg" else [])
        self._queues: list[asyncio.Queue[_Pending | None]] = [asyncio.Queue() for _ in range(max(1, len(self._pg)))]
        self._writers: list[asyncio.Task[None] | None] = [None] * len(self._queues)

    # ---- ownership -----------------------------------------------------------------------------

    async def is_foreign(self, subscription_id: int) -> bool:
        """True when we know our subscription id and the event names another one.

        With no id known yet (never registered or looked up), the event is stored and the worker
        settles it against Strava's list before acting on it.
        """
        cache = subscription_cache(self.rt)
        fresh, ours = cache.known_id()
        if not fresh:
            ours = await cache.our_id()
        return ours is not None and ours != subscription_id

    # ---- storing -------------------------------------------------------------------------------

    async def submit(self, event: StravaEvent) -> bool:
        """Store the event and its job; True when new, False for a redelivery. Raises IntakeUnavailable."""
        lane = self._lane(event)
        writer = self._writers[lane]
        if writer is None or writer.done():
            self._writers[lane] = asyncio.ensure_future(self._write_loop(self._queues[lane]))
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[bool] = loop.create_future()
        self._waiting += 1
        if self._waiting > 1:  # requests are queueing for the writer: a burst
            self._pressed_at = time.monotonic()
        try:
            await self._queues[lane].put(_Pending(event, self.rt.clock.now(), answer))
            return await answer
        finally:
            self._waiting -= 1

    def busy(self) -> bool:
        """Whether a burst is on: requests were queueing for the writer within the last 200 ms.
        Two requests overlapping once is enough, so a steady few hundred events a second usually
        counts; a trickle does not. The worker then claims a batch per pause instead of at full
        speed. Safe to ask from another thread (the one-process worker's)."""
        return time.monotonic() - self._pressed_at < BUSY_WINDOW_S

    async def close(self) -> None:
        for queue, writer in zip(self._queues, self._writers, strict=True):
            if writer is not None and not writer.done():
                await queue.put(None)
                await writer
        if self._sqlite is not None:
            await self._sqlite.close()
        for pg in self._pg:
            await pg.close()

    def _lane(self, event: StravaEvent) -> int:
        return event.owner_id % len(self._queues)

    async def _write_loop(self, queue: asyncio.Queue[_Pending | None]) -> None:
        while True:
            first = await queue.get()
            if first is None:
                return
            batch = [first]
            stop = False
            while len(batch) < self.max_batch:
                try:
                    item = queue.get_nowait()
                except asyncio.QueueEmpty:
                    break
                if item is None:
                    stop = True
                    break
                batch.append(item)
            await self._write(batch)
            if stop:
                return

    async def _write(self, batch: list[_Pending]) -> None:
        try:
            stored = await self._store(batch)
        except Exception as exc:
            log.error("could not store %d webhook event(s): %s", len(batch), type(exc).__name__)
            for item in batch:
                if not item.answer.done():
                    item.answer.set_exception(IntakeUnavailable(type(exc).__name__))
            return
        for item, is_new in zip(batch, stored, strict=True):
            if not item.answer.done():
                item.answer.set_result(is_new)
        if any(stored) and self.on_stored is not None:
            self.on_stored()

    async def _store(self, batch: list[_Pending]) -> list[bool]:
        # The same event twice in one batch: the first is the one stored.
        first_of: dict[str, int] = {}
        for index, item in enumerate(batch):
            first_of.setdefault(item.event.dedupe_key, index)
        unique = [batch[i] for i in sorted(first_of.values())]
        now = self.rt.clock.now()
        if self._sqlite is not None:
            async with self.rt.write_lock or contextlib.nullcontext():
                ids = await self._sqlite.store([(p.event, p.received_at) for p in unique], now,
                                              self.rt.settings.pending_events_per_athlete,
                                              self.rt.settings.catch_up_lookback_s)
            inserted = {p.event.dedupe_key for p, event_id in zip(unique, ids, strict=True) if event_id is not None}
        elif self._pg:  # a batch is one lane's: its events' athletes all map to that lane's writer
            inserted = await self._pg[self._lane(batch[0].event)].store([(p.event, p.received_at) for p in unique], now,
                                            self.rt.settings.pending_events_per_athlete,
                                            self.rt.settings.catch_up_lookback_s)
        else:
            inserted = await self._store_with_sqlalchemy(unique, now)
        return [index == first_of[item.event.dedupe_key] and item.event.dedupe_key in inserted
                for index, item in enumerate(batch)]

    async def _store_with_sqlalchemy(self, unique: list[_Pending], now: datetime) -> set[str]:
        rows = [{"dedupe_key": p.event.dedupe_key, "received_at": p.received_at,
                 "subscription_id": p.event.subscription_id, "object_type": p.event.object_type,
                 "object_id": p.event.object_id, "aspect_type": p.event.aspect_type,
                 "owner_id": p.event.owner_id, "event_time": p.event.event_time,
                 "updates": p.event.updates_json, "state": "new"} for p in unique]
        # Core statements in executemany form ("insertmanyvalues"): compiled once and cached
        # whatever the batch size, with no ORM bookkeeping on the hot path.
        async with self.rt.write() as session:
            insert = insert_for(session)
            result = await session.execute(
                insert(_EVENTS).on_conflict_do_nothing(index_elements=["dedupe_key"])
                .returning(_EVENTS.c.id, _EVENTS.c.dedupe_key, _EVENTS.c.owner_id), rows)
            inserted = {row.dedupe_key: (row.id, row.owner_id) for row in result}
            if inserted:
                await self._plan_and_queue(session, list(inserted.items()), {p.event.dedupe_key: p for p in unique},
                                           now)
        return set(inserted)

    async def _plan_and_queue(self, session: AsyncSession, inserted: list[tuple[str, tuple[int, int]]],
                              by_key: dict[str, _Pending], now: datetime) -> None:
        """Jobs for the new events worth checking; the others stored settled, with why (see `pending`)."""
        insert = insert_for(session)
        owners = {owner for _key, (_id, owner) in inserted}
        connections = {athlete: Connected(conn_id, user, scopes or "", status)
                       for athlete, conn_id, user, scopes, status in await session.execute(
                           select(_CONNECTIONS.c.athlete_id, _CONNECTIONS.c.id, _CONNECTIONS.c.user_id,
                                  _CONNECTIONS.c.granted_scopes, _CONNECTIONS.c.status)
                           .where(_CONNECTIONS.c.athlete_id.in_(owners)))}
        users = {conn.user_id: athlete for athlete, conn in connections.items()}
        pending: dict[int, int] = {}
        if users:
            counted = await session.execute(
                select(_JOBS.c.user_id, func.count()).where(
                    _JOBS.c.user_id.in_(users), _JOBS.c.kind == JOB_KIND, _JOBS.c.state.in_(WAITING_STATES))
                .group_by(_JOBS.c.user_id))
            pending = {users[user]: int(count) for user, count in counted}
        new = sorted(((event_id, by_key[key].event.object_type, owner, by_key[key].received_at)
                      for key, (event_id, owner) in inserted), key=lambda row: row[0])
        plan = plan_intake(new, connections, pending, self.rt.settings.pending_events_per_athlete)
        if plan.jobs:
            await session.execute(insert(_JOBS), [
                job_row(JOB_KIND, {"event_id": event_id}, now, priority=PRIORITY_EVENT,
                        dedupe_key=event_job_key(event_id), user_id=user_id) for event_id, user_id in plan.jobs])
        if plan.settled:
            # Known to fail (no activity read), or beyond the pending bound: stored settled, with no job.
            await session.execute(
                update(_EVENTS).where(_EVENTS.c.id == bindparam("b_id"))
                .values(state=IGNORED, error=bindparam("error"), processed_at=now),
                [{"b_id": event_id, "error": reason} for event_id, reason in plan.settled])
        for athlete, (conn, since) in plan.catch_ups.items():
            waiting = (await session.execute(select(_JOBS.c.id).where(
                _JOBS.c.user_id == conn.user_id, _JOBS.c.state == QUEUED,
                _JOBS.c.dedupe_key.like(waiting_catch_up_pattern(conn.conn_id))).limit(1))).first()
            if waiting is None:
                row = catch_up_row(conn, athlete, since, now, self.rt.settings.catch_up_lookback_s)
                await session.execute(insert(_JOBS).values(**row).on_conflict_do_nothing(index_elements=["dedupe_key"]))
