"""App Home: a dashboard published with `views.publish` each time an agent opens the Home tab."""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import Any

from slack_bolt.async_app import AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from bot import render
from bot.context import BotContext
from bot.slack_api import SlackCallFailed, call
from service.desk.api_models import Body, RateLimitBody, WebhookStatusBody

log = logging.getLogger(__name__)


async def _optional(part: Awaitable[Any], body: type[Body], what: str) -> dict[str, Any] | None:
    """One missing part (Strava unreachable, say) shows as unavailable instead of an empty tab."""
    try:
        return body.of(await part).to_json()
    except Exception as exc:
        log.warning("App Home: %s unavailable: %s", what, exc)
        return None


async def home_view(bot: BotContext) -> dict[str, Any]:
    summary = (await bot.desk.home.summary()).to_dict()
    rate = await _optional(bot.desk.webhooks.rate_limit_report(), RateLimitBody, "rate-limit report")
    hook = await _optional(bot.desk.webhooks.webhook_status(), WebhookStatusBody, "webhook status")
    return render.home_view(summary, rate, hook)


def home_opened(bot: BotContext):  # noqa: ANN201 - a Bolt listener
    async def on_home_opened(event: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext) -> None:
        if event.get("tab") != "home":
            return
        user_id = event.get("user") or context.user_id or ""
        # The dashboard names users; outsiders see the same refusal the commands give.
        verdict = await bot.access.allows(user_id, client)
        view = await home_view(bot) if verdict else render.home_refusal(user_id, verdict.problem)
        try:
            await call("views.publish", client.views_publish(user_id=user_id, view=view),
                       bot.rt.settings.slack_timeout_s)
        except SlackCallFailed as exc:
            # Nobody to tell but the log: the tab keeps what it showed last, and the next visit tries again.
            log.warning("App Home for %s not published: %s", user_id, exc.reason)

    return on_home_opened
