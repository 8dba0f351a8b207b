"""Proactive alerts in FITGLUE_ALERT_CHANNEL: the Slack implementation of the service's AlertSink.

Once per incident, not once per event: the first `alert(kind, …)` opens an incident (a row
`alert:<kind>` in `app_state`, inserted only if absent, so replicas agree) and posts; further
alerts of that kind stay quiet until `resolve(kind)` closes it (and says so in the channel).
Alert texts come from the service and carry no Connect links or tokens.
"""

from __future__ import annotations

import logging

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import delete, select

from service.db.dialect import insert_for
from service.db.models import AppState
from service.runtime import Runtime

from . import render
from .blocks import Reply

log = logging.getLogger("fitglue.alerts")

KEY_PREFIX = "alert:"


class SlackAlerts:
    def __init__(self, rt: Runtime, client: AsyncWebClient, channel: str) -> None:
        self.rt = rt
        self.client = client
        self.channel = channel

    async def alert(self, kind: str, message: str) -> None:
        if not await self._open(kind, message):
            return  # this incident is already known (and was posted)
        log.warning("alert %s: %s", kind, message)
        if not await self._post(render.alert(kind, message)):
            await self._close(kind)  # not posted: let the next occurrence try again

    async def resolve(self, kind: str) -> None:
        if await self._close(kind):
            log.info("alert %s resolved", kind)
            await self._post(render.alert_resolved(kind))

    async def open_incidents(self) -> list[str]:
        async with self.rt.sessions() as session:
            rows = await session.execute(select(AppState.key).where(AppState.key.startswith(KEY_PREFIX)))
            return sorted(key[len(KEY_PREFIX):] for key in rows.scalars())

    async def _open(self, kind: str, message: str) -> bool:
        async with self.rt.sessions() as session, session.begin():
            insert = insert_for(session)
            result = await session.execute(
                insert(AppState).values(key=KEY_PREFIX + kind, value=message[:2000], updated_at=self.rt.clock.now())
                .on_conflict_do_nothing(index_elements=["key"]))
            return bool(result.rowcount)  # type: ignore[attr-defined]

    async def _close(self, kind: str) -> bool:
        async with self.rt.sessions() as session, session.begin():
            result = await session.execute(delete(AppState).where(AppState.key == KEY_PREFIX + kind))
            return bool(result.rowcount)  # type: ignore[attr-defined]

    async def _post(self, reply: Reply) -> bool:
        try:
            await self.client.chat_postMessage(channel=self.channel, **reply.as_kwargs())
            return True
        except (SlackApiError, OSError) as exc:
            error = exc.response.get("error") if isinstance(exc, SlackApiError) and exc.response else exc
            hint = " (invite the bot to the channel)" if error == "not_in_channel" else ""
            log.warning("could not post an alert to %s: %s%s", self.channel, error, hint)
            return False
