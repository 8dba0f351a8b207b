"""Alert incidents, so an alert goes out once per incident and not once per event.

An incident of kind K is the row `alert:K` in `app_state`. Opening inserts it only if absent, so of
several replicas noticing the same thing exactly one opens it (and posts); closing deletes it and
hands back its message, so exactly one replica says it cleared.

`IncidentAlerts` is the runtime's AlertSink built on that: it decides when to post (once per
incident) and keeps the incident state right when a post fails; an `AlertPoster` (the Slack bot's
`SlackAlerts`) only posts.
"""

from __future__ import annotations

import logging
from typing import Protocol

from sqlalchemy import delete, select

from service.core.runtime import Runtime
from service.db.dialect import insert_for
from service.db.models import AppState

log = logging.getLogger("fitglue.alerts")

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


class AlertPoster(Protocol):
    """Somewhere alerts are shown (a Slack channel). Each call says whether the post went out; it
    never raises."""

    async def post_alert(self, kind: str, message: str) -> bool: ...

    async def post_resolved(self, kind: str) -> bool: ...


class IncidentAlerts:
    """Alerts once per incident, not once per event: the first `alert(kind, …)` opens the incident
    and posts; further alerts of that kind stay quiet until `resolve(kind)` closes it (and posts that).

    A post that fails never loses the incident state: an alert that was not posted leaves no
    incident, so the next occurrence posts again; a resolution that was not posted leaves the
    incident open, so the next check resolves it again.
    """

    def __init__(self, rt: Runtime, poster: AlertPoster) -> None:
        self.rt = rt
        self.poster = poster

    async def alert(self, kind: str, message: str) -> None:
        if not await open_incident(self.rt, kind, message):
            return  # this incident is already known (and was posted)
        log.warning("alert %s: %s", kind, message)
        if not await self.poster.post_alert(kind, message):
            await close_incident(self.rt, kind)

    async def resolve(self, kind: str) -> None:
        message = await close_incident(self.rt, kind)
        if message is None:
            return  # no open incident (or another replica closed it)
        log.info("alert %s resolved", kind)
        if not await self.poster.post_resolved(kind):
            await open_incident(self.rt, kind, message)

    async def open_incidents(self) -> list[str]:
        return await open_incidents(self.rt)
