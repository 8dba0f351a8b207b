"""Block Kit primitives that respect Slack's limits, so no reply is ever rejected for its size.

Limits (docs and `slack_sdk.models.blocks` validators): 50 blocks per message, 100 in a Home tab;
section text ≤ 3000 characters, section fields ≤ 10 of ≤ 2000; header plain text ≤ 150;
context ≤ 10 elements; button text ≤ 75, value ≤ 2000; confirm title ≤ 100, text ≤ 300.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

MAX_MESSAGE_BLOCKS = 50
MAX_HOME_BLOCKS = 100
MAX_SECTION_TEXT = 3000
MAX_FIELD_TEXT = 2000
MAX_CONTEXT_TEXT = 2000
MAX_HEADER_TEXT = 150
MAX_FALLBACK_TEXT = 3000
ELLIPSIS = "…"

Block = dict[str, Any]


@dataclass(frozen=True)
class Reply:
    """One message: `text` states the outcome in words (notifications, screen readers)."""

    text: str
    blocks: list[Block] = field(default_factory=list)

    def as_kwargs(self) -> dict[str, Any]:
        return {"text": clip(self.text, MAX_FALLBACK_TEXT), "blocks": self.blocks}


def escape(text: str) -> str:
    """Slack mrkdwn control characters, for text that came from users or the database."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def clip(text: str, limit: int) -> str:
    """Shorten to at most `limit` characters without cutting a `<…>` entity or an `&…;` escape in half."""
    if len(text) <= limit:
        return text
    cut = text[: max(limit - len(ELLIPSIS), 0)]
    open_entity = cut.rfind("<")
    if open_entity > cut.rfind(">"):
        cut = cut[:open_entity]
    amp = cut.rfind("&")
    if amp != -1 and ";" not in cut[amp:] and len(cut) - amp <= 5:
        cut = cut[:amp]
    return cut + ELLIPSIS


def mrkdwn(text: str, limit: int = MAX_SECTION_TEXT) -> dict[str, str]:
    return {"type": "mrkdwn", "text": clip(text, limit)}


def plain(text: str, limit: int) -> dict[str, Any]:
    return {"type": "plain_text", "text": clip(text, limit), "emoji": True}


def header(text: str) -> Block:
    return {"type": "header", "text": plain(text, MAX_HEADER_TEXT)}


def section(text: str) -> Block:
    return {"type": "section", "text": mrkdwn(text)}


def fields(texts: list[str]) -> Block:
    return {"type": "section", "fields": [mrkdwn(t, MAX_FIELD_TEXT) for t in texts[:10]]}


def context(texts: list[str]) -> Block:
    return {"type": "context", "elements": [mrkdwn(t, MAX_CONTEXT_TEXT) for t in texts[:10]]}


def divider() -> Block:
    return {"type": "divider"}


def button(text: str, action_id: str, value: str, *, style: str | None = None,
           confirm: dict[str, Any] | None = None, url: str | None = None) -> dict[str, Any]:
    element: dict[str, Any] = {"type": "button", "text": plain(text, 75), "action_id": action_id}
    if value:
        element["value"] = value[:2000]
    if style:
        element["style"] = style
    if confirm:
        element["confirm"] = confirm
    if url:
        element["url"] = url
    return element


def confirm_dialog(title: str, text: str, yes: str, no: str = "Cancel", style: str = "danger") -> dict[str, Any]:
    return {"title": plain(title, 100), "text": plain(text, 300), "confirm": plain(yes, 30),
            "deny": plain(no, 30), "style": style}


def actions(block_id: str, elements: list[dict[str, Any]]) -> Block:
    return {"type": "actions", "block_id": block_id, "elements": elements[:25]}


def fit(blocks: list[Block], limit: int = MAX_MESSAGE_BLOCKS, overflow_note: str | None = None) -> list[Block]:
    """Cap the block count; the trailing context/actions blocks survive, the middle is cut with a note."""
    if len(blocks) <= limit:
        return blocks
    tail: list[Block] = []
    while blocks and blocks[-1]["type"] in ("actions", "context") and len(tail) < 2:
        tail.insert(0, blocks.pop())
    keep = limit - len(tail) - 1
    note = section(overflow_note or f"{ELLIPSIS} {len(blocks) - keep} more not shown.")
    return blocks[:keep] + [note] + tail


def slack_date(iso: str | None, missing: str = "never") -> str:
    """An ISO 8601 UTC time as a Slack date token, shown in each reader's own time zone."""
    if not iso:
        return missing
    try:
        when = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return escape(iso)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    fallback = when.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(when.timestamp())}^{{date_short_pretty}} {{time}}|{fallback}>"
