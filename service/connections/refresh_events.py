"""The outbound events a refresh writes, in the refresh's own transaction: `recovered` when a
connection whose refreshes were failing refreshes again, `needs_reauth` when Strava refuses the
grant (`service.connections.refresh`)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from service.core.runtime import Runtime
from service.db.models import StravaConnection, User
from service.outbox import RECOVERED, connection_data, write_event
from troubleshooting.vocabulary import ConnectionStatus


async def announce(session: AsyncSession, rt: Runtime, event_type: str, conn_ids: list[int], now: datetime,
                    status: str | None = None) -> None:
    """Write `event_type` for each of these connections, in the caller's transaction (before it
    changes them; `status` is the status they are about to take)."""
    if not rt.settings.events_enabled or not conn_ids:
        return
    rows = await session.execute(
        select(StravaConnection.user_id, StravaConnection.athlete_id, StravaConnection.status,
               StravaConnection.granted_scopes, User.email).join(User).where(StravaConnection.id.in_(conn_ids)))
    for user_id, athlete_id, current, scopes, email in rows:
        await write_event(session, rt.settings, now, event_type,
                          connection_data(email, athlete_id, status or current, scopes),
                          athlete_id=athlete_id, user_id=user_id)


async def announce_recovered(session: AsyncSession, rt: Runtime, conn_ids: list[int], now: datetime) -> None:
    """`strava.connection.recovered` for the connections whose refreshes were failing until now."""
    if not rt.settings.events_enabled:
        return
    failing = list((await session.execute(select(StravaConnection.id).where(
        StravaConnection.id.in_(conn_ids), StravaConnection.refresh_failures > 0,
        StravaConnection.status == ConnectionStatus.CONNECTED))).scalars())
    await announce(session, rt, RECOVERED, failing, now)
