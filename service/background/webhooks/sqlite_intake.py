"""The intake's batch write on SQLite in ONE hop to a database thread.

Through SQLAlchemy + aiosqlite, every cursor operation is a round trip between the event loop
and the connection's thread (about 15 per batch), and each costs far more than SQLite's own work:
measured on the 2-core machine, a batch of 10 events took ~4 ms that way and ~1 ms as one call
into a thread that runs the whole transaction with the standard `sqlite3` module. PostgreSQL
keeps the SQLAlchemy path (asyncpg pipelines its protocol and has no thread hops).

Another process may hold SQLite's one write lock (`fitglue worker` beside `serve --role web`):
SQLite's own busy handler would sleep 1, 2, 5, 10 … 100 ms between tries, a tail the intake
cannot afford under Strava's 2 s deadline. This connection polls for the lock every millisecond
instead (in its own thread, so the event loop never waits), for at most SQLITE_BUSY_TIMEOUT_S;
then the batch fails and is answered 503, so Strava delivers again.

Rows are written exactly as SQLAlchemy writes them (UTCDateTime as naive UTC text with
microseconds), so the rest of the service reads them back unchanged. Writers of this process
queue on `Runtime.write_lock` as everywhere else.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from service.background.webhooks.pending import Connected, catch_up_row, plan_intake, waiting_catch_up_pattern
from service.background.webhooks.processing import IGNORED
from service.background.webhooks.strava_events import StravaEvent
from service.db.engine import SQLITE_BUSY_TIMEOUT_S
from service.queue.store import PRIORITY_EVENT, job_row

BUSY_POLL_S = 0.001

_INSERT_EVENT = (
    "INSERT INTO webhook_events (dedupe_key, received_at, subscription_id, object_type, object_id, aspect_type,"
    " owner_id, event_time, updates, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'new')"
    " ON CONFLICT (dedupe_key) DO NOTHING RETURNING id")
_SETTLE_EVENT = "UPDATE webhook_events SET state = ?, error = ?, processed_at = ? WHERE id = ?"
_INSERT_JOB = (
    "INSERT INTO jobs (kind, payload, priority, run_after, attempts, state, user_id, dedupe_key, created_at,"
    " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (dedupe_key) DO NOTHING")


def sqlite_time(when: datetime) -> str:
    """UTCDateTime's storage form on SQLite."""
    return when.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


class SqliteEventWriter:
    def __init__(self, path: str, job_kind: str, job_key: Callable[[int], str]) -> None:
        self.path = path
        self.job_kind = job_kind
        self.job_key = job_key  # the event job's dedupe key (intake.event_job_key)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fitglue-intake")
        self._db: sqlite3.Connection | None = None

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            # timeout 0: a busy write lock is polled for in `_begin` instead of by SQLite's sleeps.
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=0)
            # No automatic WAL checkpoints on this connection: the commit that crosses the threshold
            # would run the checkpoint while requests wait. The service's other connections (worker,
            # scheduler) still checkpoint as SQLite does by default.
            self._begin(db, "PRAGMA journal_mode=WAL")  # itself needs the lock the first time
            for pragma in ("foreign_keys=ON", "synchronous=NORMAL", "wal_autocheckpoint=0"):
                db.execute(f"PRAGMA {pragma}")
            self._db = db
        return self._db

    async def store(self, events: Sequence[tuple[StravaEvent, datetime]], now: datetime, bound: int,
                    lookback_s: int) -> list[int | None]:
        """Store each (event, received_at) and a job for each new one worth checking (`pending`:
        at most `bound` waiting per athlete); the new event ids (None: duplicate)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._store, events, now, bound, lookback_s)

    def _store(self, events: Sequence[tuple[StravaEvent, datetime]], now: datetime, bound: int,
               lookback_s: int) -> list[int | None]:
        db = self._connection()
        # The rows are made before the write lock is taken: a worker in another process waits for that
        # lock only while SQLite works.
        rows = [(event.dedupe_key, sqlite_time(received_at), event.subscription_id, event.object_type,
                 event.object_id, event.aspect_type, event.owner_id, event.event_time, event.updates_json)
                for event, received_at in events]
        self._begin(db)
        try:
            ids: list[int | None] = []
            for row in rows:
                inserted = db.execute(_INSERT_EVENT, row).fetchone()
                ids.append(inserted[0] if inserted else None)
            new = [(event_id, event) for event_id, (event, _at) in zip(ids, events, strict=True)
                   if event_id is not None]
            if new:
                self._plan_and_queue(db, new, events, ids, now, bound, lookback_s)
            db.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
            raise
        return ids

    @staticmethod
    def _begin(db: sqlite3.Connection, statement: str = "BEGIN IMMEDIATE") -> None:
        """Run `statement` (taking the write lock), polling every millisecond while another
        connection holds it, for at most SQLITE_BUSY_TIMEOUT_S (then its error is raised)."""
        deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_S
        while True:
            try:
                db.execute(statement)
                return
            except sqlite3.OperationalError as exc:
                busy = getattr(exc, "sqlite_errorcode", None) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
                if not busy or time.monotonic() >= deadline:
                    raise
                time.sleep(BUSY_POLL_S)

    def _plan_and_queue(self, db: sqlite3.Connection, new: list[tuple[int, StravaEvent]],
                        events: Sequence[tuple[StravaEvent, datetime]], ids: list[int | None], now: datetime,
                        bound: int, lookback_s: int) -> None:
        received = {event_id: at for event_id, (_event, at) in zip(ids, events, strict=True) if event_id is not None}
        owners = sorted({event.owner_id for _id, event in new})
        marks = ",".join("?" * len(owners))
        connections = {athlete: Connected(conn_id, user, scopes, status) for athlete, conn_id, user, scopes, status
                       in db.execute("SELECT athlete_id, id, user_id, coalesce(granted_scopes, ''), status"
                                     f" FROM strava_connections WHERE athlete_id IN ({marks})", owners)}
        users = {conn.user_id: athlete for athlete, conn in connections.items()}
        pending: dict[int, int] = {}
        if users:
            user_marks = ",".join("?" * len(users))
            pending = {users[user]: count for user, count in db.execute(
                f"SELECT user_id, count(*) FROM jobs WHERE user_id IN ({user_marks}) AND kind = ?"
                " AND state IN ('queued', 'running') GROUP BY user_id", (*users, self.job_kind))}
        plan = plan_intake([(event_id, event.object_type, event.owner_id, received[event_id]) for event_id, event in new],
                           connections, pending, bound)
        db.executemany(_INSERT_JOB, [self._job(event_id, user_id, now) for event_id, user_id in plan.jobs])
        db.executemany(_SETTLE_EVENT, [(IGNORED, reason, sqlite_time(now), event_id)
                                       for event_id, reason in plan.settled])
        for athlete, (conn, since) in plan.catch_ups.items():
            if db.execute("SELECT 1 FROM jobs WHERE user_id = ? AND state = 'queued' AND dedupe_key LIKE ? LIMIT 1",
                          (conn.user_id, waiting_catch_up_pattern(conn.conn_id))).fetchone() is None:
                db.execute(_INSERT_JOB, self._row(catch_up_row(conn, athlete, since, now, lookback_s)))

    def _job(self, event_id: int, user_id: int | None, now: datetime) -> tuple[Any, ...]:
        return self._row(job_row(self.job_kind, {"event_id": event_id}, now, priority=PRIORITY_EVENT,
                                 dedupe_key=self.job_key(event_id), user_id=user_id))

    @staticmethod
    def _row(row: dict[str, Any]) -> tuple[Any, ...]:
        return (row["kind"], row["payload"], row["priority"], sqlite_time(row["run_after"]), row["attempts"],
                row["state"], row["user_id"], row["dedupe_key"], sqlite_time(row["created_at"]),
                sqlite_time(row["updated_at"]))

    async def close(self) -> None:
        def shut() -> None:
            if self._db is not None:
                self._db.close()
                self._db = None

        await asyncio.get_running_loop().run_in_executor(self._executor, shut)
        self._executor.shutdown(wait=True)
