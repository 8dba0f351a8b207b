"""The buttons under a diagnosis. Each one is stateless — its `value` is the target e-mail — and
each follows up by replacing the original message with what it did plus a fresh diagnosis, so the
agent always looks at the current truth."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncBoltContext, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot import render
from bot.audit import slack_actor
from bot.blocks import Reply
from bot.context import BotContext
from bot.delivery import deliver_link
from bot.outcomes import attempt, tell
from bot.render.history_blocks import HISTORY_PAGE, split_more_value
from service.desk.api_models import RefreshBody, WebhookRegistrationBody
from service.desk.event_models import EventsRetriedBody
from service.desk.support_view_models import HistoryBody
from troubleshooting.vocabulary import Action

Handler = Callable[[BotContext, str, str, AsyncWebClient], Awaitable[Reply]]


async def _with_fresh_diagnosis(bot: BotContext, target: str, note: Reply) -> Reply:
    if not target:
        return note
    return render.diagnosis(await bot.desk.diagnose(target), note=note)


async def send_connect_link(bot: BotContext, target: str, actor: str, client: AsyncWebClient) -> Reply:
    note = await deliver_link(bot.desk, client, target, actor)
    return await _with_fresh_diagnosis(bot, target, note)


async def refresh_token(bot: BotContext, target: str, actor: str, client: AsyncWebClient) -> Reply:
    note = render.refresh_result(RefreshBody.of(await bot.desk.refresh_now(target, actor)).to_json())
    return await _with_fresh_diagnosis(bot, target, note)


async def reregister_webhook(bot: BotContext, target: str, actor: str, client: AsyncWebClient) -> Reply:
    note = render.webhook(WebhookRegistrationBody.of(await bot.desk.webhooks.reregister_webhook(actor)).to_json())
    return await _with_fresh_diagnosis(bot, target, note)


async def retry_events(bot: BotContext, target: str, actor: str, client: AsyncWebClient) -> Reply:
    note = render.events_retried(target, EventsRetriedBody.of(await bot.desk.events.retry_user_events(target, actor)).to_json())
    return await _with_fresh_diagnosis(bot, target, note)


async def show_history(bot: BotContext, target: str, actor: str, client: AsyncWebClient) -> Reply:
    who, cursor = split_more_value(target)
    page = await bot.desk.history.page(who, HISTORY_PAGE, cursor)
    return render.history(who, HistoryBody.of(page).to_json(), older=cursor is not None)


# One per interactive.AGENT_ACTIONS and NAVIGATION id (app.py registers a listener for each).
HANDLERS: dict[str, Handler] = {
    Action.SEND_CONNECT_LINK: send_connect_link,
    Action.REFRESH_TOKEN: refresh_token,
    Action.REREGISTER_WEBHOOK: reregister_webhook,
    Action.RETRY_EVENTS: retry_events,
    "show_history": show_history,
    "more_history": show_history,
}


def button_listener(bot: BotContext, action_id: str):  # noqa: ANN201 - a Bolt listener
    handler = HANDLERS[action_id]

    async def on_click(ack: AsyncAck, action: dict[str, Any], respond: AsyncRespond, client: AsyncWebClient,
                       context: AsyncBoltContext) -> None:
        await ack()
        target = str(action.get("value") or "")
        reply, ok = await attempt(handler(bot, target, slack_actor(context.user_id), client), f"button {action_id}")
        # A failure is added below the diagnosis instead of replacing it: the diagnosis is still true.
        await tell(bot.rt, respond, reply, f"button {action_id}", replace_original=ok)

    return on_click


async def acknowledge_url_button(ack: AsyncAck) -> None:
    """A URL button: Slack has already opened the link in the browser; the click needs only its 200."""
    await ack()
