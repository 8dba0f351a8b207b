"""Looking users up by e-mail or athlete id, and creating them on first link."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from service.core.inputs import BadEmail, normalize_email, parse_who
from service.db.models import StravaConnection, User
from troubleshooting.vocabulary import ConnectionStatus

__all__ = ["BadEmail", "connection_for", "find_user", "get_or_create_user", "normalize_email"]


async def find_user(session: AsyncSession, who: str) -> User | None:
    """`who` is an e-mail (any case) or a Strava athlete id. Raises inputs.BadInput when it is neither."""
    parsed = parse_who(who)
    query = select(User).options(selectinload(User.connection))
    if parsed.athlete_id is not None:
        query = query.join(StravaConnection).where(StravaConnection.athlete_id == parsed.athlete_id)
    else:
        query = query.where(User.email_normalized == parsed.email)
    return (await session.execute(query)).scalar_one_or_none()


async def get_or_create_user(session: AsyncSession, email: str, now: datetime) -> tuple[User, bool]:
    email = normalize_email(email)
    existing = await find_user(session, email)
    if existing is not None:
        return existing, False
    user = User(email=email, email_normalized=email.lower(), created_at=now)
    session.add(user)
    await session.flush()
    return user, True


async def connection_for(session: AsyncSession, user: User, now: datetime) -> StravaConnection:
    """The user's connection row, created as not_connected when missing."""
    conn = (await session.execute(select(StravaConnection).where(StravaConnection.user_id == user.id))).scalar_one_or_none()
    if conn is None:
        conn = StravaConnection(user_id=user.id, status=ConnectionStatus.NOT_CONNECTED, status_changed_at=now, refresh_failures=0,
                                updated_at=now)
        session.add(conn)
        await session.flush()
    return conn
