"""Getting a Connect link to the right person: the user by direct message when their e-mail belongs
to a member of the workspace, otherwise only the agent who asked (in an ephemeral reply).

Whatever Slack answers — a refusal, a rate limit, a 5xx, a proxy's page, nothing at all — the link
that was issued still reaches the agent privately, with the reason the direct message did not happen.

The link never goes into a log line or a channel: the log messages here name the e-mail and the
Slack failure, never the URL.
"""

from __future__ import annotations

import logging

from slack_sdk.web.async_client import AsyncWebClient

from bot import render
from bot.blocks import Reply
from bot.slack_api import NOT_JSON, SlackCallFailed, call
from service.desk.support_desk import SupportDesk

log = logging.getLogger(__name__)


async def workspace_member(client: AsyncWebClient, email: str, timeout_s: float) -> tuple[str | None, str]:
    """(Slack user id, or None with the reason the link cannot go by DM)."""
    try:
        answer = await call("users.lookupByEmail", client.users_lookupByEmail(email=email), timeout_s)
    except SlackCallFailed as exc:
        if exc.error == "users_not_found":
            return None, "they are not a member of this Slack workspace"
        log.warning("users.lookupByEmail failed for %s: %s", email, exc.reason)
        return None, f"I could not check whether they are in this Slack workspace: {exc.reason}"
    user = answer.get("user")
    user = user if isinstance(user, dict) else {}
    if user.get("deleted") or user.get("is_bot") or not user.get("id"):
        return None, "their Slack account is deactivated"
    return str(user["id"]), ""


async def send_dm(client: AsyncWebClient, user_id: str, reply: Reply, timeout_s: float) -> None:
    """Raises SlackCallFailed when the message did not go out."""
    opened = await call("conversations.open", client.conversations_open(users=user_id), timeout_s)
    channel = opened.get("channel")
    channel_id = channel.get("id") if isinstance(channel, dict) else None
    if not channel_id:
        raise SlackCallFailed("conversations.open", NOT_JSON, status=200)
    await call("chat.postMessage",
               client.chat_postMessage(channel=str(channel_id), unfurl_links=False, **reply.as_kwargs()), timeout_s)


async def deliver_link(desk: SupportDesk, client: AsyncWebClient, email: str, actor: str) -> Reply:
    """Issue the link (an unknown e-mail becomes a new FitGlue user) and deliver it; returns what the
    agent should see."""
    timeout_s = desk.rt.settings.slack_timeout_s
    issued = (await desk.issue_connect_link(email, actor)).to_dict()
    member, why = await workspace_member(client, issued["email"], timeout_s)
    if member is not None:
        try:
            await send_dm(client, member, render.link_dm(issued), timeout_s)
            return render.link_sent(issued, member)
        except SlackCallFailed as exc:
            log.warning("could not send %s a direct message: %s", issued["email"], exc.reason)
            why = f"the direct message could not be sent: {exc.reason}"
    return render.link_for_agent(issued, why)
