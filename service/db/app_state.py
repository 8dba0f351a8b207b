"""Small app-wide facts in `app_state`, one row per key (e.g. our push subscription id)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from service.db.dialect import insert_for
from service.db.models import AppState


async def get_value(session: AsyncSession, key: str) -> str | None:
    row = await session.get(AppState, key)
    return row.value if row is not None else None


async def set_value(session: AsyncSession, key: str, value: str, now: datetime) -> None:
    insert = insert_for(session)
    stmt = insert(AppState).values(key=key, value=value, updated_at=now)
    await session.execute(stmt.on_conflict_do_update(index_elements=["key"],
                                                     set_={"value": value, "updated_at": now}))


async def get_or_create_value(session: AsyncSession, key: str, value: str, now: datetime) -> str:
    """The stored value of `key`, storing `value` first when there is none. The first writer wins,
    also between replicas racing for it, and a stored value is never replaced."""
    insert = insert_for(session)
    await session.execute(insert(AppState).values(key=key, value=value, updated_at=now)
                          .on_conflict_do_nothing(index_elements=["key"]))
    return (await session.execute(select(AppState.value).where(AppState.key == key))).scalar_one()
