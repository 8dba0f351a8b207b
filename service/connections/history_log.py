"""Writing what happens to a connection that no other table keeps, for `fitglue history`.

Links, OAuth attempts, webhook events, jobs and agent actions already have their own rows; this
adds status changes, granted-scope changes, refresh failures (with their error class) and
successful refreshes. A successful refresh does not add a row each time: every user has one
`refresh_ok` row per UTC day whose `at` moves to the latest refresh and whose `count` grows, so a
token refreshed every six hours for a year costs 365 rows, not 1,460. Each writer takes the
caller's session, so the entry commits (or not) with the change it describes.

Summaries are written for agents and never hold a token, a link, an e-mail or an athlete id.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from service.core.inputs import storable
from service.db.dialect import insert_for
from service.db.models import ConnectionHistory, StravaConnection
from troubleshooting.vocabulary import ConnectionStatus

# The kinds this table holds (the others of `fitglue history` come from their own tables).
STATUS_CHANGED = "status_changed"
SCOPES_CHANGED = "scopes_changed"
REFRESH_OK = "refresh_ok"
REFRESH_FAILED = "refresh_failed"

MAX_SUMMARY = 500


def record(session: AsyncSession, user_id: int, at: datetime, kind: str, summary: str,
           detail: str | None = None) -> None:
    """Add one entry in the caller's transaction."""
    session.add(ConnectionHistory(user_id=user_id, at=at, kind=kind, summary=storable(summary, MAX_SUMMARY) or "",
                                  detail=storable(detail, 200), count=1))


def record_status_change(session: AsyncSession, user_id: int, at: datetime, before: str | None, after: str,
                         reason: str | None) -> None:
    """A status change (nothing when the status stays the same)."""
    if before == after:
        return
    text = f"status {before or 'none'} → {after}" + (f": {reason}" if reason else "")
    record(session, user_id, at, STATUS_CHANGED, text, after)


def record_scopes_change(session: AsyncSession, user_id: int, at: datetime, before: str | None,
                         after: str | None) -> None:
    """A change of the granted scopes (comma-separated, sorted; nothing when they stay the same)."""
    if (before or "") == (after or ""):
        return
    text = f"granted scopes {before or 'none'} → {after or 'none'}"
    record(session, user_id, at, SCOPES_CHANGED, text, after)


def record_refresh_failure(session: AsyncSession, user_id: int, at: datetime, error_kind: str,
                           message: str | None) -> None:
    record(session, user_id, at, REFRESH_FAILED, f"token refresh failed ({error_kind})" +
           (f": {message}" if message else ""), error_kind)


async def note_refresh_failure(session: AsyncSession, conn_id: int, user_id: int, at: datetime, kind: str,
                               message: str | None, dead_reason: str | None) -> tuple[int, str]:
    """A refresh failed (the grant is dead when `dead_reason` is given): record it, and the status
    change to needs_reauth, and when this run of failures began (`refresh_failing_since`, for
    `fitglue affected`). Returns (failures before this one, the status before), in the caller's
    transaction, before the caller stores the failure on the connection."""
    failures, before = (await session.execute(select(StravaConnection.refresh_failures, StravaConnection.status)
                                              .where(StravaConnection.id == conn_id))).one()
    await session.execute(update(StravaConnection).where(StravaConnection.id == conn_id,
                                                         StravaConnection.status == ConnectionStatus.CONNECTED,
                                                         StravaConnection.refresh_failing_since.is_(None))
                          .values(refresh_failing_since=at))
    record_refresh_failure(session, user_id, at, kind, message)
    # A connection disconnected or revoked while Strava answered keeps that status (refresh._record_failure).
    if dead_reason is not None and before == ConnectionStatus.CONNECTED:
        record_status_change(session, user_id, at, before, ConnectionStatus.NEEDS_REAUTH, dead_reason)
    return failures or 0, before


async def record_refreshes_ok(session: AsyncSession, user_ids: Iterable[int], at: datetime) -> None:
    """One successful refresh per user: their row for `at`'s UTC day is created or moved forward."""
    day = at.strftime("%Y-%m-%d")
    rows = [{"user_id": user_id, "at": at, "kind": REFRESH_OK, "summary": "token refreshed", "detail": None,
             "day": day, "count": 1} for user_id in sorted(set(user_ids))]
    if not rows:
        return
    insert = insert_for(session)(ConnectionHistory)
    table = ConnectionHistory.__table__
    statement = insert.on_conflict_do_update(
        index_elements=[table.c.user_id, table.c.kind, table.c.day],
        set_={"at": func.max(table.c.at, insert.excluded.at) if _sqlite(session) else
              func.greatest(table.c.at, insert.excluded.at),
              "count": table.c.count + 1})
    await session.execute(statement, rows)


def _sqlite(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "sqlite"
