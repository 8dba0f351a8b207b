"""The access check in front of every command and button, and its audit entry.

A refused request is answered through `ack(...)` (returning the response ends the dispatch with a
200; not calling `next()` without returning one would be a 404, which Slack shows as an error).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncBoltContext, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot import render
from bot.audit import slack_actor
from bot.commands import Command, parse
from bot.context import BotContext
from bot.outcomes import tell


def describe(body: dict[str, Any]) -> tuple[str, str | None]:
    """(audit action, target) of a slash command or a button click."""
    if body.get("type") == "block_actions":
        action = (body.get("actions") or [{}])[0]
        return f"slack_button:{action.get('action_id')}", action.get("value") or None
    parsed = parse(body.get("text"))
    if isinstance(parsed, Command):
        return f"slack_command:{parsed.name}", parsed.arg
    return f"slack_command:{parsed.name}", (body.get("text") or "")[:320]


def support_only(bot: BotContext) -> Callable[..., Awaitable[Any]]:
    async def check(ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient,
                    respond: AsyncRespond, next: Callable[[], Awaitable[None]]) -> Any:
        user_id = context.user_id
        action, target = describe(body)
        verdict = await bot.access.allows(user_id, client)
        if verdict:
            await bot.desk.record_request(slack_actor(user_id), action, target or None, "allowed")
            return await next()
        await bot.desk.record_request(slack_actor(user_id), action, target or None, "refused",
                                      verdict.problem or "not in FITGLUE_SUPPORT_SLACK_IDS")
        reply = render.refusal(user_id or "unknown", verdict.problem)
        if body.get("type") == "block_actions":
            # An ack body is not shown for clicks: tell the person through the response URL.
            response = await ack()

            bot.rt.spawn(tell(bot.rt, respond, reply, action, replace_original=False))
            return response
        return await ack(response_type="ephemeral", **reply.as_kwargs())

    return check
