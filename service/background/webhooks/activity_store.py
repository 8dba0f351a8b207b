"""What the worker stores once Strava has confirmed an event, each with its outbound event in the same
transaction: activity summaries (`strava.activity.created` / `updated`), a confirmed delete
(`strava.activity.deleted`) and a confirmed deauthorization (`strava.connection.revoked`).

Activity events carry only Strava's own answer (`service.outbox.activity_summary`); nothing of the
unsigned push event is forwarded.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from service.connections import history_log
from service.connections.erasure import delete_strava_data
from service.connections.tokens import drop_tokens
from service.core.runtime import Runtime
from service.db.dialect import insert_for
from service.db.models import ActivitySummary, StravaConnection, User
from service.outbox import (
    ACTIVITY_CREATED,
    ACTIVITY_DELETED,
    ACTIVITY_UPDATED,
    REVOKED,
    activity_summary,
    connection_data,
    write_event,
)
from troubleshooting.vocabulary import ConnectionStatus

log = logging.getLogger(__name__)


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


async def _owner_data(session: AsyncSession, athlete_id: int) -> tuple[int | None, dict[str, Any]]:
    """(user id, connection data) of the FitGlue user connected to this athlete."""
    row = (await session.execute(select(User.id, User.email, StravaConnection.status, StravaConnection.granted_scopes)
                                 .join(StravaConnection).where(StravaConnection.athlete_id == athlete_id))).first()
    if row is None:
        return None, {"email": None, "athlete_id": athlete_id, "status": ConnectionStatus.NOT_CONNECTED}
    return row[0], connection_data(row[1], athlete_id, row[2], row[3])


async def _announce_activity(session: AsyncSession, rt: Runtime, event_type: str, athlete_id: int,
                             activity: dict[str, Any]) -> None:
    user_id, data = await _owner_data(session, athlete_id)
    await write_event(session, rt.settings, rt.clock.now(), event_type, {**data, "activity": activity},
                      athlete_id=athlete_id, user_id=user_id)


def answers_by_id(activities: list[dict[str, Any]]) -> dict[int, tuple[int, dict[str, Any]]]:
    """Strava's answers by activity id: (athlete id, the answer); answers without both ids are left out."""
    answers: dict[int, tuple[int, dict[str, Any]]] = {}
    for item in activities:
        try:
            answers[int(item["id"])] = (int((item.get("athlete") or {})["id"]), item)
        except (KeyError, TypeError, ValueError):
            continue
    return answers


async def known_activities(session: AsyncSession, rt: Runtime, activity_ids: Collection[int]) -> set[int]:
    """Which of these activities we hold already (read before an upsert, so `announce_stored` can tell a
    new one from a re-fetched one); nothing is read while outbound events are off."""
    if not rt.settings.events_enabled or not activity_ids:
        return set()
    return set((await session.execute(select(ActivitySummary.id).where(
        ActivitySummary.id.in_(list(activity_ids))))).scalars())


async def announce_stored(session: AsyncSession, rt: Runtime, answers: dict[int, tuple[int, dict[str, Any]]],
                          known: set[int], updated_ids: Collection[int] = ()) -> None:
    """In the caller's transaction (the one that stored the answers): `strava.activity.created` for each
    activity new to us, `strava.activity.updated` for one in `updated_ids` (Strava announced an update
    and we fetched it again). The data is Strava's answer only."""
    if not rt.settings.events_enabled:
        return
    for activity_id, (athlete_id, item) in answers.items():
        event_type = ACTIVITY_CREATED if activity_id not in known else \
            ACTIVITY_UPDATED if activity_id in updated_ids else None
        if event_type is not None:
            await _announce_activity(session, rt, event_type, athlete_id, activity_summary(item))


async def upsert_summaries(rt: Runtime, activities: list[dict[str, Any]], *,
                           updated_ids: Collection[int] = ()) -> int:
    """Keep (id, name, sport type, start date) of each activity Strava answered with; a re-seen
    activity is undeleted. Announces each as `announce_stored` says, in the same transaction. How
    many were stored."""
    if not answers_by_id(activities):
        return 0
    async with rt.write() as session:
        return await store_answers(session, rt, activities, updated_ids)


async def store_answers(session: AsyncSession, rt: Runtime, activities: list[dict[str, Any]],
                        updated_ids: Collection[int] = ()) -> int:
    """`upsert_summaries` in the caller's transaction (a batch of events settling together)."""
    now = rt.clock.now()
    answers = answers_by_id(activities)
    rows = [{"id": activity_id, "athlete_id": athlete_id, "name": str(item.get("name") or "")[:300] or None,
             "sport_type": str(item.get("sport_type") or item.get("type") or "")[:60] or None,
             "start_date": _parse_time(item.get("start_date")), "fetched_at": now, "deleted_at": None}
            for activity_id, (athlete_id, item) in answers.items()]
    if not rows:
        return 0
    known = await known_activities(session, rt, answers)
    insert = insert_for(session)
    stmt = insert(ActivitySummary).values(rows)
    await session.execute(stmt.on_conflict_do_update(index_elements=["id"], set_={
        "athlete_id": stmt.excluded.athlete_id, "name": stmt.excluded.name,
        "sport_type": stmt.excluded.sport_type, "start_date": stmt.excluded.start_date,
        "fetched_at": stmt.excluded.fetched_at, "deleted_at": None}))
    await announce_stored(session, rt, answers, known, updated_ids)
    return len(rows)


async def record_deleted(rt: Runtime, activity_id: int, athlete_id: int) -> None:
    """Mark the athlete's stored summary deleted (only theirs: the owner was checked, and is again
    here) and announce it."""
    async with rt.write() as session:
        await record_deleted_in(session, rt, activity_id, athlete_id)


async def record_deleted_in(session: AsyncSession, rt: Runtime, activity_id: int, athlete_id: int) -> None:
    """`record_deleted` in the caller's transaction."""
    result = await session.execute(update(ActivitySummary).where(
        ActivitySummary.id == activity_id, ActivitySummary.athlete_id == athlete_id,
        ActivitySummary.deleted_at.is_(None)).values(deleted_at=rt.clock.now()))
    if result.rowcount:  # type: ignore[attr-defined]
        await announce_deleted(session, rt, activity_id, athlete_id)


async def announce_deleted(session: AsyncSession, rt: Runtime, activity_id: int, athlete_id: int) -> None:
    """`strava.activity.deleted`, in the caller's transaction (the one recording Strava's 404)."""
    await _announce_activity(session, rt, ACTIVITY_DELETED, athlete_id, {"id": activity_id})


async def mark_revoked(rt: Runtime, conn_id: int) -> None:
    """The deauthorization is confirmed: drop the tokens, delete the athlete's Strava data, mark the
    connection revoked and announce it, in one transaction."""
    now = rt.clock.now()
    async with rt.write() as session:
        conn = await session.get(StravaConnection, conn_id)
        if conn is None or conn.status == ConnectionStatus.REVOKED:
            return
        user = await session.get(User, conn.user_id)
        drop_tokens(conn)
        reason = "the athlete removed FitGlue's access in Strava (deauthorization confirmed)"
        history_log.record_status_change(session, conn.user_id, now, conn.status, ConnectionStatus.REVOKED, reason)
        conn.status, conn.status_reason, conn.status_changed_at = ConnectionStatus.REVOKED, reason, now
        conn.revoked_at = now
        conn.next_refresh_at = None
        conn.updated_at = now
        # Strava's API Agreement: the athlete's Strava data goes with the grant, in this same transaction.
        await delete_strava_data(session, [conn.athlete_id] if conn.athlete_id else [], [conn.user_id])
        await announce_revoked(session, rt, conn, user.email if user else None)
    log.info("connection %s: deauthorization confirmed, marked revoked, tokens and Strava data deleted", conn_id)


async def announce_revoked(session: AsyncSession, rt: Runtime, conn: StravaConnection, email: str | None) -> None:
    """`strava.connection.revoked`, in the caller's transaction: after the one that marks `conn` revoked
    and deletes the athlete's Strava data (and their earlier outbound events) has done so."""
    await write_event(session, rt.settings, rt.clock.now(), REVOKED,
                      connection_data(email, conn.athlete_id, ConnectionStatus.REVOKED, conn.granted_scopes),
                      athlete_id=conn.athlete_id, user_id=conn.user_id)
