"""Connect links in Slack: the direct message to the user, and what the asking agent is told.
A link goes only to the person it is for; it never appears in a channel or a log."""

from __future__ import annotations

from typing import Any

from bot.blocks import Reply, actions, button, escape, section, slack_date
from bot.interactive import OPEN_CONNECT_LINK


def link_message_for_user(url: str, expires_at: str | None) -> str:
    """What the user reads: sent by DM, or pasted by the agent."""
    return ("Hi! To connect (or reconnect) FitGlue with your Strava account, open the link below, sign in to "
            "Strava, keep every permission ticked and press Authorize. Strava then brings you back to FitGlue, "
            f"which shows whether it worked.\n{url}\nThe link is just for you and works until "
            f"{_plain_date(expires_at)}.")


def _plain_date(iso: str | None) -> str:
    return iso.replace("T", " ").replace("Z", " UTC") if iso else "it is used"


def link_dm(issued: dict[str, Any]) -> Reply:
    """The direct message to the user themselves."""
    text = link_message_for_user(issued["url"], issued.get("expires_at"))
    blocks = [section(escape(text).replace(escape(issued["url"]), issued["url"])),
              actions("fitglue_connect", [button("Connect with Strava", OPEN_CONNECT_LINK, "",
                                                 style="primary", url=issued["url"])])]
    return Reply(text, blocks)


def link_sent(issued: dict[str, Any], slack_user_id: str) -> Reply:
    created = " (a new FitGlue account was created for them)" if issued.get("created_user") else ""
    note = (f":incoming_envelope: Sent *{escape(issued['email'])}* (<@{slack_user_id}>) a Connect link by "
            f"direct message{created}. It expires {slack_date(issued.get('expires_at'))}.")
    text = f"Sent {issued['email']} a Connect link by direct message{created}"
    return Reply(text, [section(note)])


def link_for_agent(issued: dict[str, Any], why: str) -> Reply:
    """The link goes only to the agent who asked (ephemeral), with a message ready to paste."""
    email = issued["email"]
    created = " A new FitGlue account was created for them." if issued.get("created_user") else ""
    paste = link_message_for_user(issued["url"], issued.get("expires_at"))
    blocks = [
        section(f":link: Connect link for *{escape(email)}* — {escape(why)}, so pass it on yourself."
                f"{created} It expires {slack_date(issued.get('expires_at'))} and works once."),
        section(f"<{issued['url']}|Connect link for {escape(email)}>"),
        section("*Ready to paste to the user:*\n```" + escape(paste) + "```"),
    ]
    return Reply(f"Connect link for {email} ready for you to pass on ({why})", blocks)
