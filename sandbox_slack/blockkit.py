"""Block Kit -> view models for the templates: what each block shows, with every text already made
safe (mrkdwn.to_html / plain_to_html). Covers the blocks and elements the bot uses: section (text,
fields), context, divider, header, actions with buttons (style, url, confirm dialog). Anything else
becomes an "unsupported block TYPE" (or element) note; a malformed block never raises.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from markupsafe import Markup

from sandbox_slack.mrkdwn import plain_to_html, to_html

SUPPORTED = ("section", "context", "divider", "header", "actions")


def text_html(obj: Any, names: Mapping[str, str] | None = None) -> Markup:
    """A Block Kit text object (mrkdwn or plain_text) as safe HTML; anything else as empty."""
    if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
        return Markup("")
    return to_html(obj["text"], names) if obj.get("type") == "mrkdwn" else plain_to_html(obj["text"])


def plain(obj: Any) -> str:
    """The words of a text object, unformatted (for labels)."""
    return obj["text"] if isinstance(obj, dict) and isinstance(obj.get("text"), str) else ""


@dataclass(frozen=True)
class Confirm:
    title: str
    text: Markup
    confirm: str
    deny: str
    style: str


@dataclass(frozen=True)
class Button:
    index: int  # its place in the actions block: the page posts only where it is, never its value
    label: str
    style: str
    url: str | None
    confirm: Confirm | None


@dataclass(frozen=True)
class BlockView:
    type: str
    text: Markup = Markup("")
    fields: list[Markup] = field(default_factory=list)
    elements: list[Markup] = field(default_factory=list)
    buttons: list[Button | str] = field(default_factory=list)  # a str: an unsupported element's type
    block_id: str = ""


def confirm_of(raw: Any) -> Confirm | None:
    if not isinstance(raw, dict):
        return None
    return Confirm(plain(raw.get("title")) or "Are you sure?", text_html(raw.get("text")),
                   plain(raw.get("confirm")) or "Yes", plain(raw.get("deny")) or "Cancel", str(raw.get("style") or ""))


def _button(index: int, raw: Any) -> Button | str:
    if not isinstance(raw, dict) or raw.get("type") != "button":
        return str(raw.get("type") if isinstance(raw, dict) else type(raw).__name__)
    url = raw.get("url") if isinstance(raw.get("url"), str) and raw["url"].startswith(("http://", "https://")) \
        else None
    return Button(index, plain(raw.get("text")), str(raw.get("style") or ""), url, confirm_of(raw.get("confirm")))


def view(block: Any, names: Mapping[str, str] | None = None) -> BlockView:
    """What one block shows; ``names`` (user id -> name) for mentions."""
    kind = block.get("type") if isinstance(block, dict) else None
    if not isinstance(kind, str) or kind not in SUPPORTED:
        return BlockView("unsupported", text=Markup("unsupported block {}").format(kind or type(block).__name__))
    if kind == "section":
        raw_fields = block.get("fields") if isinstance(block.get("fields"), list) else []
        return BlockView(kind, text=text_html(block.get("text"), names),
                         fields=[text_html(f, names) for f in raw_fields])
    if kind == "context":
        raw = block.get("elements") if isinstance(block.get("elements"), list) else []
        return BlockView(kind, elements=[text_html(e, names) for e in raw])
    if kind == "header":
        return BlockView(kind, text=text_html(block.get("text")))
    if kind == "actions":
        raw = block.get("elements") if isinstance(block.get("elements"), list) else []
        return BlockView(kind, buttons=[_button(i, e) for i, e in enumerate(raw)],
                         block_id=str(block.get("block_id") or ""))
    return BlockView(kind)


def views(blocks: Any, names: Mapping[str, str] | None = None) -> list[BlockView]:
    return [view(block, names) for block in blocks] if isinstance(blocks, list) else []


def find_button(blocks: Any, block_index: int, element_index: int) -> dict[str, Any] | None:
    """The button element at that place, as the bot sent it (for the click's payload)."""
    try:
        element = blocks[block_index]["elements"][element_index]
    except (IndexError, KeyError, TypeError):
        return None
    return element if isinstance(element, dict) and element.get("type") == "button" else None
