"""A user's history as a Slack reply: a header, one compact context block per entry (newest
first), and a "More" button that replaces the message with the next, older page.

Whatever the entries hold, the reply stays inside Block Kit's limits (bot/blocks.py): at most
`HISTORY_PAGE` entry blocks plus a header, a note and the button; every text is escaped and clipped.
"""

from __future__ import annotations

from typing import Any

from bot.blocks import (
    MAX_MESSAGE_BLOCKS,
    Block,
    Reply,
    actions,
    button,
    context,
    escape,
    fit,
    header,
    section,
    slack_date,
)

HISTORY_PAGE = 15  # entries per reply (issue 13)
SHOW_HISTORY = "show_history"  # the "History" button under a diagnosis; value: WHO
MORE_HISTORY = "more_history"  # the "More" button; value: "WHO CURSOR"
HISTORY_BLOCK_ID = "fitglue_history"

KIND_WORDS = {"link_issued": "Connect link", "oauth_attempt": "Connect attempt", "scopes_changed": "permissions",
              "refresh_ok": "token refresh", "refresh_failed": "refresh failed", "webhook_event": "webhook event",
              "job": "job", "status_changed": "status", "agent_action": "agent action",
              "event_delivery": "event delivery"}


def history_button(who: str) -> dict[str, Any]:
    return button("History", SHOW_HISTORY, who)


def more_value(who: str, cursor: str) -> str:
    return f"{who} {cursor}"


def split_more_value(value: str) -> tuple[str, str | None]:
    """(WHO, cursor) from a "More" button's value; a value without a cursor is the first page."""
    who, _, cursor = value.strip().partition(" ")
    return who, cursor.strip() or None


def _entry_block(entry: dict[str, Any]) -> Block:
    kind = str(entry.get("kind", ""))
    when = slack_date(entry.get("at") if isinstance(entry.get("at"), str) else None, "at an unknown time")
    return context([f"{when} · *{escape(KIND_WORDS.get(kind, kind))}*", escape(str(entry.get("summary", "")))])


def history(who: str, page: dict[str, Any], *, older: bool = False) -> Reply:
    """`page` is the desk's `{"entries", "next_before"}`; `older` when it is not the first page."""
    entries = list(page.get("entries") or [])[:HISTORY_PAGE]
    cursor = page.get("next_before")
    title = f"History of {who}" + (" (older)" if older else "")
    blocks: list[Block] = [header(title)]
    if not entries:
        blocks.append(section("Nothing older is recorded." if older else "Nothing is recorded for this user yet."))
    blocks += [_entry_block(e) for e in entries]
    if isinstance(cursor, str) and cursor:
        blocks.append(actions(HISTORY_BLOCK_ID, [button("More", MORE_HISTORY, more_value(who, cursor))]))
    text = f"{title}: {len(entries)} entr{'y' if len(entries) == 1 else 'ies'}, newest first"
    if cursor:
        text += "; more are older"
    note = f"… run `fitglue history {who}` for the full list."
    return Reply(text, fit(blocks, MAX_MESSAGE_BLOCKS, note))
