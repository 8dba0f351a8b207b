"""The local Slack's workspace as plain data: people, conversations, messages, App Home views, and the
response URLs it handed out. No I/O."""

from __future__ import annotations

import asyncio
import itertools
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

TEAM = "T0SANDBOX"
APP_ID = "A0FITGLUE"
BOT_USER = "U0FITGLUEBOT"
AGENT = "U0SUPPORT1"  # on the support list (FITGLUE_SUPPORT_SLACK_IDS in the sandbox)
OUTSIDER = "U0OUTSIDER"  # in the workspace, not on the list: sees the refusal
SUPPORT_CHANNEL = "C0SUPPORT"
ALERTS_CHANNEL = "C0ALERTS"
CHANNEL_NAMES = {SUPPORT_CHANNEL: "support", ALERTS_CHANNEL: "fitglue-alerts"}


@dataclass(frozen=True)
class Person:
    id: str
    name: str
    email: str


PEOPLE = (
    Person(AGENT, "Alex (support)", "alex.support@example.com"),
    Person(OUTSIDER, "Olly (marketing)", "olly@example.com"),
    Person("U0SANDYATH", "Sandy (FitGlue user)", "sandbox-athlete@example.com"),
)


@dataclass
class Message:
    id: int
    channel: str
    sender: str  # a user id, or BOT_USER
    text: str
    blocks: list[Any]
    at: datetime
    ephemeral_to: str | None = None  # only this user sees it ("Only visible to you")


@dataclass
class ResponseTarget:
    """Where posts to one response URL go: the conversation and user of the command or click, and the
    message a `replace_original` replaces (the one whose button was pressed)."""

    channel: str
    user: str
    replaces: int | None = None
    posts: int = 0
    created: float = field(default_factory=time.monotonic)
    first_message: int | None = None  # the first message posted through it


@dataclass
class Workspace:
    people: dict[str, Person] = field(default_factory=lambda: {p.id: p for p in PEOPLE})
    messages: list[Message] = field(default_factory=list)
    home_views: dict[str, dict[str, Any]] = field(default_factory=dict)
    responses: dict[str, ResponseTarget] = field(default_factory=dict)
    page_user: str = AGENT  # who is typing on the page: the agent switch
    home_published: dict[str, int] = field(default_factory=dict)  # user -> views.publish calls
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    # people and conversations ------------------------------------------------------------------
    def by_email(self, email: str) -> Person | None:
        wanted = email.strip().lower()
        return next((p for p in self.people.values() if p.email == wanted), None)

    @staticmethod
    def dm_channel(user_id: str) -> str:
        return "D" + user_id.removeprefix("U")

    def dm_user(self, channel: str) -> str | None:
        if not channel.startswith("D"):
            return None
        user = "U" + channel[1:]
        return user if user in self.people else None

    def channel_of(self, channel_or_user: str) -> str | None:
        """A conversation id for chat.postMessage's `channel` (a user id means their DM)."""
        if channel_or_user in self.people:
            return self.dm_channel(channel_or_user)
        if channel_or_user in CHANNEL_NAMES or self.dm_user(channel_or_user):
            return channel_or_user
        return None

    # messages ------------------------------------------------------------------------------------
    def post(self, channel: str, text: str, blocks: list[Any], *, sender: str = BOT_USER,
             ephemeral_to: str | None = None, before: int | None = None) -> Message:
        """A new message, last in the conversation, or just before message ``before``."""
        message = Message(next(self._ids), channel, sender, text, blocks, datetime.now(UTC), ephemeral_to)
        earlier = self.message(before) if before is not None else None
        self.messages.insert(self.messages.index(earlier) if earlier else len(self.messages), message)
        return message

    def acknowledged(self, name: str, text: str, blocks: list[Any], ephemeral_to: str | None) -> Message:
        """The acknowledgement's own message: before whatever the response URL already received (a
        listener can answer through it before its acknowledgement has reached Slack)."""
        target = self.responses[name]
        return self.post(target.channel, text, blocks, ephemeral_to=ephemeral_to, before=target.first_message)

    def message(self, message_id: int) -> Message | None:
        return next((m for m in self.messages if m.id == message_id), None)

    def visible(self, channel: str, user: str) -> list[Message]:
        return [m for m in self.messages if m.channel == channel and m.ephemeral_to in (None, user)]

    def waiting_for(self, user: str, within_s: float) -> bool:
        """A command or click of ``user`` whose reply has not come yet (started within ``within_s``)."""
        now = time.monotonic()
        return any(r.user == user and r.posts == 0 and now - r.created < within_s for r in self.responses.values())

    # response URLs --------------------------------------------------------------------------------
    def new_response(self, channel: str, user: str, replaces: int | None = None) -> str:
        name = secrets.token_urlsafe(12)
        self.responses[name] = ResponseTarget(channel, user, replaces)
        return name

    def respond(self, name: str, body: dict[str, Any]) -> bool:
        """A post to a response URL: a new message (ephemeral unless `in_channel`), or the original
        replaced or deleted. False for a URL this workspace never handed out."""
        target = self.responses.get(name)
        if target is None:
            return False
        target.posts += 1
        original = self.message(target.replaces) if target.replaces is not None else None
        if original is not None and body.get("delete_original"):
            self.messages.remove(original)
        elif original is not None and body.get("replace_original"):
            original.text, original.blocks = str(body.get("text") or ""), _blocks(body)
            original.at = datetime.now(UTC)
        else:
            ephemeral = None if body.get("response_type") == "in_channel" else target.user
            posted = self.post(target.channel, str(body.get("text") or ""), _blocks(body), ephemeral_to=ephemeral)
            target.first_message = target.first_message or posted.id
        return True

    async def wait_for_response(self, name: str, timeout_s: float) -> bool:
        """Until the response URL got its first post (True) or ``timeout_s`` passed (False)."""
        return await _poll(lambda: self.responses[name].posts > 0, timeout_s)

    async def wait_for_home(self, user: str, since: int, timeout_s: float) -> bool:
        """Until a view is published for ``user`` after the ``since``-th publication."""
        return await _poll(lambda: self.home_published.get(user, 0) > since, timeout_s)

    def publish_home(self, user: str, view: dict[str, Any]) -> None:
        self.home_views[user] = view
        self.home_published[user] = self.home_published.get(user, 0) + 1


POLL_S = 0.05


async def _poll(done: Callable[[], bool], timeout_s: float) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not done():
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(POLL_S)
    return True


def _blocks(body: dict[str, Any]) -> list[Any]:
    blocks = body.get("blocks")
    return blocks if isinstance(blocks, list) else []
