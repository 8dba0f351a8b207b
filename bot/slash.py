"""`/fitglue …`: acknowledge at once, then do the work and `respond()` ephemerally."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncBoltContext, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot import render
from bot.audit import slack_actor
from bot.blocks import Reply
from bot.commands import Command, Malformed, parse
from bot.context import BotContext
from bot.delivery import deliver_link
from bot.outcomes import attempt, tell
from bot.render.history_blocks import HISTORY_PAGE
from service.desk.api_models import RateLimitBody, RefreshBody, WebhookRegistrationBody, WebhookStatusBody
from service.desk.support_view_models import AffectedBody, HistoryBody

WORKING = {
    "diagnose": "diagnosing {arg}",
    "history": "reading the history of {arg}",
    "affected": "finding everyone with {arg}",
    "link": "issuing a Connect link for {arg}",
    "refresh": "refreshing the Strava token of {arg}",
    "webhook_status": "looking at the Strava push subscription",
    "webhook_register": "checking and repairing the Strava push subscription",
    "ratelimit": "reading the Strava API usage",
}


async def run(bot: BotContext, command: Command, user_id: str, client: AsyncWebClient) -> Reply:
    desk, actor, arg = bot.desk, slack_actor(user_id), command.arg or ""
    if command.name == "diagnose":
        return render.diagnosis(await desk.diagnose(arg))
    if command.name == "history":
        return render.history(arg, HistoryBody.of(await desk.history.page(arg, HISTORY_PAGE)).to_json())
    if command.name == "affected":
        return render.affected(AffectedBody.of(await desk.affected.report(arg)).to_json())
    if command.name == "link":
        return await deliver_link(desk, client, arg, actor)
    if command.name == "refresh":
        outcome = render.refresh_result(RefreshBody.of(await desk.refresh_now(arg, actor)).to_json())
        return render.diagnosis(await desk.diagnose(arg), note=outcome)
    if command.name == "webhook_status":
        return render.webhook(WebhookStatusBody.of(await desk.webhooks.webhook_status()).to_json())
    if command.name == "webhook_register":
        return render.webhook(WebhookRegistrationBody.of(await desk.webhooks.reregister_webhook(actor)).to_json())
    if command.name == "ratelimit":
        return render.rate_limits(RateLimitBody.of(await desk.webhooks.rate_limit_report()).to_json())
    return render.help_message()


def fitglue_command(bot: BotContext):  # noqa: ANN201 - a Bolt listener
    async def on_command(ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond, client: AsyncWebClient,
                         context: AsyncBoltContext) -> None:
        parsed = parse(command.get("text"))
        if isinstance(parsed, Malformed) or parsed.name == "help":
            await ack()
            problem = parsed.message if isinstance(parsed, Malformed) else None
            await tell(bot.rt, respond, render.help_message(problem), "/fitglue help")
            return
        await ack(response_type="ephemeral",
                  **render.working(WORKING[parsed.name].format(arg=parsed.arg)).as_kwargs())
        reply, _ok = await attempt(run(bot, parsed, context.user_id or "", client), f"/fitglue {parsed.name}")
        await tell(bot.rt, respond, reply, f"/fitglue {parsed.name}")

    return on_command
