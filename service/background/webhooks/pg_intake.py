"""The intake's batch write on PostgreSQL through asyncpg directly: a handful of round trips per batch.

Through SQLAlchemy every batch built, compiled-or-looked-up and adapted each statement and its
rows in Python, and under load that was 12-24 % of the web process's event loop (bench/README.md,
issue 11). Here each batch is at most five statements with array parameters (`unnest`, `= ANY`),
so the statement text never depends on the batch size and asyncpg prepares each one once per
connection; the rows go over the wire in asyncpg's binary format with no per-row Python work
beyond building the arrays.

Each writer holds ONE connection of its own (the intake runs one writer task per lane, see
`intake.PG_LANES`). When the database fails, the batch's transaction is rolled back, the error goes up (the
intake answers 503, so Strava delivers again) and a broken connection is dropped: the next batch
connects afresh, so the intake recovers by itself once the database is back.

Semantics are those of the SQLAlchemy and SQLite paths exactly: insert-or-skip on the dedupe
key, then `pending.plan_intake` decides which new events get a job, which are stored settled and
which athletes get one catch-up, all in one transaction. Times are stored as UTCDateTime stores
them (naive UTC).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg

from service.background.webhooks.pending import Connected, catch_up_row, plan_intake, waiting_catch_up_pattern
from service.background.webhooks.processing import IGNORED
from service.background.webhooks.strava_events import StravaEvent
from service.queue.store import PRIORITY_EVENT, QUEUED, RUNNING, job_row

CONNECT_TIMEOUT_S = 10

_INSERT_EVENTS = (
    "INSERT INTO webhook_events (dedupe_key, received_at, subscription_id, object_type, object_id, aspect_type,"
    " owner_id, event_time, updates, state)"
    " SELECT k, r, s, t, o, a, w, e, u, 'new' FROM unnest($1::text[], $2::timestamp[], $3::bigint[], $4::text[],"
    " $5::bigint[], $6::text[], $7::bigint[], $8::bigint[], $9::text[]) AS x(k, r, s, t, o, a, w, e, u)"
    " ON CONFLICT (dedupe_key) DO NOTHING RETURNING id, dedupe_key")
_CONNECTIONS = ("SELECT athlete_id, id, user_id, coalesce(granted_scopes, ''), status FROM strava_connections"
                " WHERE athlete_id = ANY($1::bigint[])")
_PENDING = ("SELECT user_id, count(*) FROM jobs WHERE user_id = ANY($1::int[]) AND kind = $2"
            " AND state = ANY($3::text[]) GROUP BY user_id")
_JOB_COLUMNS = "kind, payload, priority, run_after, attempts, state, user_id, dedupe_key, created_at, updated_at"
_INSERT_JOBS = (
    f"INSERT INTO jobs ({_JOB_COLUMNS}) SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::timestamp[],"
    " $5::int[], $6::text[], $7::int[], $8::text[], $9::timestamp[], $10::timestamp[])"
    " ON CONFLICT (dedupe_key) DO NOTHING")
_SETTLE_EVENTS = (
    "UPDATE webhook_events AS e SET state = $1, error = x.error, processed_at = $2"
    " FROM unnest($3::int[], $4::text[]) AS x(id, error) WHERE e.id = x.id")
_WAITING_CATCH_UP = "SELECT 1 FROM jobs WHERE user_id = $1 AND state = $2 AND dedupe_key LIKE $3 LIMIT 1"
_JOB_FIELDS = ("kind", "payload", "priority", "run_after", "attempts", "state", "user_id", "dedupe_key",
               "created_at", "updated_at")
_TIME_FIELDS = frozenset({"run_after", "created_at", "updated_at"})


def naive_utc(when: datetime) -> datetime:
    """UTCDateTime's storage form: naive UTC."""
    return when.astimezone(UTC).replace(tzinfo=None)


def asyncpg_dsn(url: Any) -> str:
    """The libpq-style DSN asyncpg takes, from the engine's SQLAlchemy URL (driver name dropped)."""
    return str(url.set(drivername="postgresql").render_as_string(hide_password=False))


class PgEventWriter:
    def __init__(self, dsn: str, job_kind: str, job_key: Callable[[int], str]) -> None:
        self._dsn = dsn
        self.job_kind = job_kind
        self.job_key = job_key  # the event job's dedupe key (intake.event_job_key)
        self._db: asyncpg.Connection | None = None

    async def _connection(self) -> asyncpg.Connection:
        if self._db is None or self._db.is_closed():
            self._db = await asyncpg.connect(self._dsn, timeout=CONNECT_TIMEOUT_S)
        return self._db

    async def store(self, events: Sequence[tuple[StravaEvent, datetime]], now: datetime, bound: int,
                    lookback_s: int) -> set[str]:
        """Store each (event, received_at) (dedupe keys unique within `events`) and a job for each
        new one worth checking (`pending`: at most `bound` waiting per athlete), in one transaction;
        the dedupe keys of the events that were new. Raises what asyncpg raises when it cannot."""
        db = await self._connection()
        try:
            async with db.transaction():
                inserted = await db.fetch(_INSERT_EVENTS, *self._event_columns(events))
                if inserted:
                    await self._plan_and_queue(db, [(row[0], row[1]) for row in inserted], events, now, bound,
                                               lookback_s)
        except asyncpg.PostgresError:
            raise  # the server refused a statement: rolled back, the connection stays usable
        except BaseException:
            # A lost socket, a timeout, a cancellation mid-protocol: the connection may be unusable.
            self._drop()
            raise
        return {key for _id, key in inserted}

    @staticmethod
    def _event_columns(events: Sequence[tuple[StravaEvent, datetime]]) -> list[list[Any]]:
        columns: list[list[Any]] = [[] for _ in range(9)]
        for event, received_at in events:
            for column, value in zip(columns, (
                    event.dedupe_key, naive_utc(received_at), event.subscription_id, event.object_type,
                    event.object_id, event.aspect_type, event.owner_id, event.event_time, event.updates_json),
                    strict=True):
                column.append(value)
        return columns

    async def _plan_and_queue(self, db: asyncpg.Connection, inserted: list[tuple[int, str]],
                              events: Sequence[tuple[StravaEvent, datetime]], now: datetime, bound: int,
                              lookback_s: int) -> None:
        by_key = {event.dedupe_key: (event, at) for event, at in events}
        new = sorted(((event_id, by_key[key][0].object_type, by_key[key][0].owner_id, by_key[key][1])
                      for event_id, key in inserted), key=lambda row: row[0])
        owners = sorted({owner for _id, _type, owner, _at in new})
        connections = {athlete: Connected(conn_id, user, scopes, status) for athlete, conn_id, user, scopes, status
                       in await db.fetch(_CONNECTIONS, owners)}
        users = {conn.user_id: athlete for athlete, conn in connections.items()}
        pending: dict[int, int] = {}
        if users:
            pending = {users[user]: count for user, count in await db.fetch(
                _PENDING, list(users), self.job_kind, [QUEUED, RUNNING])}
        plan = plan_intake(new, connections, pending, bound)
        if plan.jobs:
            await db.execute(_INSERT_JOBS, *self._job_columns([
                job_row(self.job_kind, {"event_id": event_id}, now, priority=PRIORITY_EVENT,
                        dedupe_key=self.job_key(event_id), user_id=user_id) for event_id, user_id in plan.jobs]))
        if plan.settled:
            await db.execute(_SETTLE_EVENTS, IGNORED, naive_utc(now), [event_id for event_id, _ in plan.settled],
                             [reason for _, reason in plan.settled])
        for athlete, (conn, since) in plan.catch_ups.items():
            if await db.fetchval(_WAITING_CATCH_UP, conn.user_id, QUEUED, waiting_catch_up_pattern(conn.conn_id)) is None:
                await db.execute(_INSERT_JOBS, *self._job_columns(
                    [catch_up_row(conn, athlete, since, now, lookback_s)]))

    @staticmethod
    def _job_columns(rows: list[dict[str, Any]]) -> list[list[Any]]:
        return [[naive_utc(row[name]) if name in _TIME_FIELDS else row[name] for row in rows] for name in _JOB_FIELDS]

    def _drop(self) -> None:
        if self._db is not None:
            self._db.terminate()
            self._db = None

    async def close(self) -> None:
        if self._db is not None:
            with contextlib.suppress(Exception):
                await self._db.close(timeout=5)
            self._db = None
