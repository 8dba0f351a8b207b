"""Getting a Connect link to the right person: the user by direct message when their e-mail belongs
to a member of the workspace, otherwise only the agent who asked (in an ephemeral reply).

The link never goes into a log line or a channel: the log messages here name the e-mail and the
Slack error, never the URL.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from service.support import SupportDesk

from . import render
from .blocks import Reply

log = logging.getLogger(__name__)


async def workspace_member(client: AsyncWebClient, email: str) -> tuple[str | None, str]:
    """(Slack user id, or None with the reason the link cannot go by DM)."""
    try:
        response: Any = await client.users_lookupByEmail(email=email)
    except SlackApiError as exc:
        error = exc.response.get("error") if exc.response is not None else None
        if error == "users_not_found":
            return None, "they are not a member of this Slack workspace"
        log.warning("users.lookupByEmail failed for %s: %s", email, error)
        return None, f"Slack could not look them up ({error})"
    user = response.get("user") or {}
    if user.get("deleted") or user.get("is_bot") or not user.get("id"):
        return None, "their Slack account is deactivated"
    return str(user["id"]), ""


async def send_dm(client: AsyncWebClient, user_id: str, reply: Reply) -> None:
    opened: Any = await client.conversations_open(users=user_id)
    channel = opened["channel"]["id"]
    await client.chat_postMessage(channel=channel, unfurl_links=False, **reply.as_kwargs())


async def deliver_link(desk: SupportDesk, client: AsyncWebClient, email: str, actor: str) -> Reply:
    """Issue the link (an unknown e-mail becomes a new FitGlue user) and deliver it; returns what the
    agent should see."""
    issued = (await desk.issue_connect_link(email, actor)).to_dict()
    member, why = await workspace_member(client, issued["email"])
    if member is not None:
        try:
            await send_dm(client, member, render.link_dm(issued))
            return render.link_sent(issued, member)
        except SlackApiError as exc:
            error = exc.response.get("error") if exc.response is not None else None
            log.warning("could not send %s a direct message: %s", issued["email"], error)
            why = f"the direct message could not be sent ({error})"
    return render.link_for_agent(issued, why)
