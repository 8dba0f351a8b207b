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


async def tell(respond: AsyncRespond, reply: Reply, what: str, **options: Any) -> None:
    """Post an ephemeral reply through the request's response URL. When Slack does not take it there is
    nobody left to tell, so it goes to the log — the reason only, never the reply (it may hold a link)."""
    try:
        answer = await respond(response_type="ephemeral", **options, **reply.as_kwargs())
    except (aiohttp.ClientError, OSError) as exc:  # TimeoutError included
        log.warning("Slack %s: the reply could not be delivered (%s)", what, type(exc).__name__)
        return
    status = getattr(answer, "status_code", 200)
    if status != 200:
        body = str(getattr(answer, "body", ""))[:100]
        log.warning("Slack %s: the response URL refused the reply (HTTP %s: %s)", what, status, body)
