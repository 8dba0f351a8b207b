"""Reading one user's connection for the access-token endpoint: the one statement on its hot path.

On a SQLite file the read is ONE hop to a database thread running the standard `sqlite3` module,
as the webhook intake writes (service/background/webhooks/sqlite_intake.py). Through SQLAlchemy and
aiosqlite the same read costs about five round trips between the event loop and the connection's
thread (checkout, cursor, execute, fetch, reset); measured with bench/token_endpoint.py on the
2-core machine at 200 calls/s, p50 went from 2.5-2.8 ms to 1.3-1.9 ms and the p99 ratio to /healthz
from 2.4-3.6 to 1.3-1.5. PostgreSQL keeps SQLAlchemy (asyncpg has no thread hops), reading in
autocommit mode so the one SELECT is one round trip, without BEGIN and ROLLBACK around it, with
statements built once (building one per call cost 2.4 -> 0.7 ms per call in-process).

Both paths return the same `ConnectionView`; times come back timezone-aware UTC, as UTCDateTime
hands them out. The reader only reads: its sqlite3 connection is `query_only`.
"""

from __future__ import annotations

import asyncio
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import bindparam, select
from sqlalchemy.exc import OperationalError

from service.core.inputs import Who
from service.core.runtime import Runtime
from service.db.models import StravaConnection, User
from troubleshooting.vocabulary import ConnectionStatus


@dataclass(frozen=True)
class ConnectionView:
    """A user and what the token endpoint needs of their connection (`conn_id` None: no connection row)."""

    email: str
    conn_id: int | None
    athlete_id: int | None
    status: str
    granted_scopes: str | None
    access_token_enc: str | None = field(repr=False)
    expires_at: datetime | None
    next_refresh_at: datetime | None
    refresh_lease_until: datetime | None
    error_kind: str | None


_COLUMNS = (User.email, StravaConnection.id, StravaConnection.athlete_id, StravaConnection.status,
            StravaConnection.granted_scopes, StravaConnection.access_token_enc, StravaConnection.expires_at,
            StravaConnection.next_refresh_at, StravaConnection.refresh_lease_until,
            StravaConnection.last_refresh_error_kind)
# Built once: building the statement per call (join condition, comparison) cost more than running it.
_SELECT = select(*_COLUMNS).select_from(User).outerjoin(StravaConnection)
_QUERIES = {"conn": _SELECT.where(StravaConnection.id == bindparam("value")),
            "athlete": _SELECT.where(StravaConnection.athlete_id == bindparam("value")),
            "email": _SELECT.where(User.email_normalized == bindparam("value"))}
_SQLITE_SELECT = (
    "SELECT users.email, c.id, c.athlete_id, c.status, c.granted_scopes, c.access_token_enc, c.expires_at,"
    " c.next_refresh_at, c.refresh_lease_until, c.last_refresh_error_kind"
    " FROM users LEFT OUTER JOIN strava_connections AS c ON users.id = c.user_id WHERE ")
_SQLITE_WHERE = {"conn": "c.id = ?", "athlete": "c.athlete_id = ?", "email": "users.email_normalized = ?"}


def _utc(value: object) -> datetime | None:
    """UTCDateTime's stored form (naive UTC; text on SQLite) as an aware datetime."""
    if value is None:
        return None
    when = datetime.fromisoformat(value) if isinstance(value, str) else value
    assert isinstance(when, datetime)
    return when.replace(tzinfo=UTC)


def _view(found: tuple | None) -> ConnectionView | None:
    if found is None:
        return None
    email, conn_id, athlete_id, status, scopes, token, expires_at, next_at, lease, kind = found
    return ConnectionView(email, conn_id, athlete_id, status or ConnectionStatus.NOT_CONNECTED, scopes,
                          token, _utc(expires_at), _utc(next_at), _utc(lease), kind)


def _key(who: Who | int) -> tuple[str, object]:
    if isinstance(who, int):
        return "conn", who
    return ("athlete", who.athlete_id) if who.athlete_id is not None else ("email", who.email)


class TokenReader:
    """Reads by e-mail or athlete id (`Who`) or by connection id (int). Close it when done."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        url = rt.engine.url
        on_file = url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:")
        self._path = url.database if on_file else None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fitglue-token-reads") \
            if on_file else None
        self._db: sqlite3.Connection | None = None
        # Elsewhere (PostgreSQL) one statement outside a transaction: no BEGIN and ROLLBACK round trips.
        self._autocommit = rt.engine.execution_options(isolation_level="AUTOCOMMIT")

    async def read(self, who: Who | int) -> ConnectionView | None:
        """The user `who` names and their connection; None when nobody matches."""
        kind, value = _key(who)
        if self._executor is not None:
            loop = asyncio.get_running_loop()
            try:
                return _view(await loop.run_in_executor(self._executor, self._read_sqlite, kind, value))
            except sqlite3.Error as exc:  # as SQLAlchemy would raise it, for the desk's one translation
                raise OperationalError(_SQLITE_SELECT, (value,), exc) from exc
        async with self._autocommit.connect() as conn:
            found = (await conn.execute(_QUERIES[kind], {"value": value})).first()
        return _view(tuple(found) if found is not None else None)

    def _read_sqlite(self, kind: str, value: object) -> tuple | None:
        if self._db is None:
            assert self._path is not None
            self._db = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False, timeout=30)
            self._db.execute("PRAGMA query_only=ON")
        return self._db.execute(_SQLITE_SELECT + _SQLITE_WHERE[kind], (value,)).fetchone()

    async def close(self) -> None:
        if self._executor is None:
            return
        executor, self._executor = self._executor, None

        def shut() -> None:
            if self._db is not None:
                self._db.close()

        await asyncio.get_running_loop().run_in_executor(executor, shut)
        executor.shutdown(wait=False)
