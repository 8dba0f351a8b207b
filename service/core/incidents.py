"""Alert incidents, so an alert goes out once per incident and not once per event.

An incident of kind K is the row `alert:K` in `app_state`. Opening inserts it only if absent, so of
several replicas noticing the same thing exactly one opens it (and posts); closing deletes it and
hands back its message, so exactly one replica says it cleared. Where alerts are posted (the Slack
bot's `SlackAlerts`) is not this module's business.
"""

from __future__ import annotations

from sqlalchemy import delete, select

from service.core.runtime import Runtime
from service.db.dialect import insert_for
from service.db.models import AppState

KEY_PREFIX = "alert:"
MAX_MESSAGE = 2000


async def open_incident(rt: Runtime, kind: str, message: str) -> bool:
    """Open the incident `kind` with `message`; False when it was open already (nothing changed)."""
    async with rt.sessions() as session, session.begin():
        insert = insert_for(session)
        result = await session.execute(
            insert(AppState).values(key=KEY_PREFIX + kind, value=message[:MAX_MESSAGE], updated_at=rt.clock.now())
            .on_conflict_do_nothing(index_elements=["key"]))
        return bool(result.rowcount)  # type: ignore[attr-defined]


async def close_incident(rt: Runtime, kind: str) -> str | None:
    """Close the incident `kind`: its message, or None when none was open (or another replica closed it)."""
    key = KEY_PREFIX + kind
    async with rt.sessions() as session, session.begin():
        message = await session.scalar(select(AppState.value).where(AppState.key == key))
        result = await session.execute(delete(AppState).where(AppState.key == key))
        return (message or "") if result.rowcount else None  # type: ignore[attr-defined]


async def open_incidents(rt: Runtime) -> list[str]:
    """The kinds of the incidents open now, sorted."""
    async with rt.sessions() as session:
        rows = await session.execute(select(AppState.key).where(AppState.key.startswith(KEY_PREFIX)))
        return sorted(key[len(KEY_PREFIX):] for key in rows.scalars())
