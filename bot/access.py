"""Who may use the bot: the users and user groups in FITGLUE_SUPPORT_SLACK_IDS, nobody else.

User ids (`U…`, `W…`) are compared directly. A user group (`S…`) is resolved with
`usergroups.users.list` and its members cached for a few minutes (the method is Tier 2, about
20 calls a minute). Any failure to resolve a group counts as "not a member": fail closed, and the
verdict carries what went wrong so the refusal can say so instead of "you're not on the list". A
rate-limited lookup is not repeated before Slack's Retry-After has passed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from slack_sdk.web.async_client import AsyncWebClient

from bot.slack_api import SlackCallFailed, call

log = logging.getLogger(__name__)

GROUP_CACHE_S = 300.0
DEFAULT_TIMEOUT_S = 10.0
# The check runs before the acknowledgement, which Slack wants within 3 s: a lookup may use at most
# this much of it, whatever FITGLUE_SLACK_TIMEOUT_S allows other calls.
BEFORE_ACK_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class Verdict:
    """`allowed`, or not; `problem` says why a refusal may be wrong (a user group could not be read)."""

    allowed: bool
    problem: str | None = None

    def __bool__(self) -> bool:
        return self.allowed


class AccessList:
    def __init__(self, ids: Iterable[str], *, ttl_s: float = GROUP_CACHE_S, timeout_s: float = DEFAULT_TIMEOUT_S,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        ids = [i.strip() for i in ids if i.strip()]
        self.user_ids = frozenset(i for i in ids if i[:1] in ("U", "W"))
        self.group_ids = tuple(i for i in ids if i[:1] == "S")
        ignored = [i for i in ids if i[:1] not in ("U", "W", "S")]
        if ignored:
            log.warning("FITGLUE_SUPPORT_SLACK_IDS: ignoring %s (not a U…/W… user or S… user-group id)",
                        ", ".join(ignored))
        self.ttl_s = ttl_s
        self.timeout_s = min(timeout_s, BEFORE_ACK_TIMEOUT_S)
        self._monotonic = monotonic
        self._groups: dict[str, tuple[float, frozenset[str]]] = {}
        self._backoff: dict[str, tuple[float, SlackCallFailed]] = {}  # group -> (until, the rate limit)
        self._locks: dict[str, asyncio.Lock] = {}

    @property
    def empty(self) -> bool:
        return not self.user_ids and not self.group_ids

    async def allows(self, user_id: str | None, client: AsyncWebClient) -> Verdict:
        if not user_id:
            return Verdict(False)
        if user_id in self.user_ids:
            return Verdict(True)
        problems = []
        for group in self.group_ids:
            try:
                if user_id in await self._members(group, client):
                    return Verdict(True)
            except SlackCallFailed as exc:
                problems.append(f"I could not check the user group {group} with Slack: {exc.reason}")
        return Verdict(False, "; ".join(problems) or None)

    async def _members(self, group: str, client: AsyncWebClient) -> frozenset[str]:
        """The group's member ids; raises SlackCallFailed (nothing is cached, so the next request tries
        again, and until then nobody gets in through the group)."""
        cached = self._groups.get(group)
        if cached and cached[0] > self._monotonic():
            return cached[1]
        lock = self._locks.setdefault(group, asyncio.Lock())
        async with lock:  # one lookup per group at a time, however many clicks arrive together
            cached = self._groups.get(group)
            if cached and cached[0] > self._monotonic():
                return cached[1]
            backoff = self._backoff.get(group)
            if backoff and backoff[0] > self._monotonic():
                raise dataclasses.replace(backoff[1], retry_after_s=math.ceil(backoff[0] - self._monotonic()))
            try:
                answer = await call("usergroups.users.list", client.usergroups_users_list(usergroup=group),
                                    self.timeout_s)
            except SlackCallFailed as exc:
                log.warning("could not resolve Slack user group %s (%s); treating it as empty", group, exc.reason)
                if exc.retry_after_s:
                    self._backoff[group] = (self._monotonic() + exc.retry_after_s, exc)
                raise
            users = answer.get("users")
            members = frozenset(str(u) for u in users) if isinstance(users, list) else frozenset()
            self._groups[group] = (self._monotonic() + self.ttl_s, members)
            return members
