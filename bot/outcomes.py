"""Turning SupportDesk failures into a reply, the same way for commands and buttons."""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import Any

import aiohttp
from slack_bolt.async_app import AsyncRespond

from bot import render
from bot.blocks import Reply
from bot.slack_api import SlackCallFailed
from service.core.http_answers import read_at_most
from service.core.runtime import Runtime
from service.desk.error_table import SupportError

log = logging.getLogger(__name__)


async def attempt(work: Awaitable[Reply], what: str) -> tuple[Reply, bool]:
    """(the reply, whether the work succeeded). Expected failures are told as they are; anything else
    is logged and told vaguely (its text could hold anything)."""
    try:
        return await work, True
    except SupportError as exc:  # the desk's failures, in the error table's words (service/desk/error_table.py)
        if exc.http_status >= 500:  # ours or Strava's, not the agent's: worth a line in the log
            log.warning("Slack %s: %s (%s)", what, exc.code, type(exc.__cause__ or exc).__name__)
        return render.failure(exc.public_message), False
    except SlackCallFailed as exc:
        return render.failure(str(exc)), False
    except Exception:
        log.exception("Slack %s failed", what)
        return render.failure(SupportError("internal", "unexpected failure").public_message), False


# Slack answers a response URL post with "ok" (or a short error word); the rest is not read.
ANSWER_LIMIT_BYTES = 4096


async def tell(rt: Runtime, respond: AsyncRespond, reply: Reply, what: str, **options: Any) -> None:
    """Post an ephemeral reply through the request's response URL (`post_reply`)."""
    await post_reply(rt, respond.response_url, reply, what, **options)


async def post_reply(rt: Runtime, response_url: str | None, reply: Reply, what: str, **options: Any) -> None:
    """Post an ephemeral reply to a Slack response URL. When Slack does not take it there is nobody
    left to tell, so it goes to the log — the reason only, never the reply (it may hold a link).

    Posted here, not with Bolt's respond(): that follows redirects, and a followed 307 resends the reply
    (a Connect link for a user outside the workspace) to wherever Location points; it also reads the
    whole answer. A 3xx is a refusal like any other non-200."""
    if not response_url:
        log.warning("Slack %s: the request had no response URL; the reply was not delivered", what)
        return
    message = {"response_type": "ephemeral", **options, **reply.as_kwargs()}
    if not message.get("blocks"):
        message.pop("blocks", None)  # Slack refuses an empty list of blocks
    try:
        async with rt.http.post(response_url, json=message, allow_redirects=False,
                                timeout=aiohttp.ClientTimeout(total=rt.settings.slack_timeout_s)) as answer:
            status = answer.status
            raw = await read_at_most(answer, ANSWER_LIMIT_BYTES)
    except (aiohttp.ClientError, OSError) as exc:  # TimeoutError included
        log.warning("Slack %s: the reply could not be delivered (%s)", what, type(exc).__name__)
        return
    if status != 200:
        body = (raw or b"").decode("utf-8", "replace")[:100]
        log.warning("Slack %s: the response URL refused the reply (HTTP %s: %s)", what, status, body)
