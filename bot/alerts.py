"""Proactive alerts in FITGLUE_ALERT_CHANNEL: the Slack poster behind the service's incident alerts.

When to post (once per incident, again after it cleared) is the service's business
(`service.core.incidents.IncidentAlerts`); this class only posts. Alert texts come from the service
and carry no Connect links or tokens. A post that fails, whatever Slack answered, is logged and
reported as not posted; it never raises into the caller (the alert check, the OAuth callback, the
refresh sweep).
"""

from __future__ import annotations

import logging

from slack_sdk.web.async_client import AsyncWebClient

from bot import render
from bot.blocks import Reply
from bot.slack_api import SlackCallFailed, call

log = logging.getLogger("fitglue.alerts")


class SlackAlerts:
    """An `AlertPoster` for one Slack channel."""

    def __init__(self, client: AsyncWebClient, channel: str, timeout_s: float) -> None:
        self.client = client
        self.channel = channel
        self.timeout_s = timeout_s

    async def post_alert(self, kind: str, message: str) -> bool:
        return await self._post(render.alert(kind, message))

    async def post_resolved(self, kind: str) -> bool:
        return await self._post(render.alert_resolved(kind))

    async def _post(self, reply: Reply) -> bool:
        try:
            await call("chat.postMessage", self.client.chat_postMessage(channel=self.channel, **reply.as_kwargs()),
                       self.timeout_s)
            return True
        except SlackCallFailed as exc:
            log.warning("could not post an alert to %s: %s", self.channel, exc.reason)
            return False
