"""Looking users up by e-mail or athlete id, and creating them on first link."""

from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from .db.models import StravaConnection, User

_EMAIL = re.compile(r"^[^@\s<>|]+@[^@\s<>|]+\.[^@\s<>|]+$")


class BadEmail(ValueError):
    pass


def normalize_email(raw: str) -> str:
    email = raw.strip()
    if len(email) > 320 or not _EMAIL.match(email):
        raise BadEmail(f"{raw!r} is not an e-mail address")
    return email


async def find_user(session: AsyncSession, who: str) -> User | None:
    """`who` is an e-mail (any case) or a Strava athlete id."""
    who = who.strip()
    query = select(User).options(selectinload(User.connection))
    if who.isdigit():
        query = query.join(StravaConnection).where(StravaConnection.athlete_id == int(who))
    else:
        query = query.where(User.email_normalized == who.lower())
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
        conn = StravaConnection(user_id=user.id, status="not_connected", status_changed_at=now, refresh_failures=0,
                                updated_at=now)
        session.add(conn)
        await session.flush()
    return conn
