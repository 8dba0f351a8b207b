"""Proactive alerts in FITGLUE_ALERT_CHANNEL: the Slack implementation of the service's AlertSink.

Once per incident, not once per event: the first `alert(kind, …)` opens an incident
(`service.core.incidents`, which replicas agree on) and posts; further alerts of that kind stay
quiet until `resolve(kind)` closes it (and says so in the channel).
Alert texts come from the service and carry no Connect links or tokens.

A post that fails, whatever Slack answered, never raises into the caller (the alert check, the OAuth
callback, the refresh sweep) and never loses the incident state: an alert that was not posted leaves
no incident, so the next occurrence posts again; a resolution that was not posted leaves the incident
open, so the next check resolves it again.
"""

from __future__ import annotations

import logging

from slack_sdk.web.async_client import AsyncWebClient

from bot import render
from bot.blocks import Reply
from bot.slack_api import SlackCallFailed, call
from service.core import incidents
from service.core.runtime import Runtime

log = logging.getLogger("fitglue.alerts")


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
            await self._close(kind)  # not posted: no incident, so the next occurrence posts again

    async def resolve(self, kind: str) -> None:
        message = await self._close(kind)
        if message is None:
            return  # no open incident (or another replica closed it)
        log.info("alert %s resolved", kind)
        if not await self._post(render.alert_resolved(kind)):
            await self._open(kind, message)  # the channel still shows it open: resolve it again next check

    async def open_incidents(self) -> list[str]:
        return await incidents.open_incidents(self.rt)

    async def _open(self, kind: str, message: str) -> bool:
        return await incidents.open_incident(self.rt, kind, message)

    async def _close(self, kind: str) -> str | None:
        return await incidents.close_incident(self.rt, kind)

    async def _post(self, reply: Reply) -> bool:
        try:
            await call("chat.postMessage", self.client.chat_postMessage(channel=self.channel, **reply.as_kwargs()),
                       self.rt.settings.slack_timeout_s)
            return True
        except SlackCallFailed as exc:
            log.warning("could not post an alert to %s: %s", self.channel, exc.reason)
            return False
