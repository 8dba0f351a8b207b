"""Who may use the bot: the users and user groups in FITGLUE_SUPPORT_SLACK_IDS, nobody else.

User ids (`U…`, `W…`) are compared directly. A user group (`S…`) is resolved with
`usergroups.users.list` and its members cached for a few minutes (the method is Tier 2, about
20 calls a minute). Any failure to resolve a group counts as "not a member": fail closed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

log = logging.getLogger(__name__)

GROUP_CACHE_S = 300.0


class AccessList:
    def __init__(self, ids: Iterable[str], *, ttl_s: float = GROUP_CACHE_S,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        ids = [i.strip() for i in ids if i.strip()]
        self.user_ids = frozenset(i for i in ids if i[:1] in ("U", "W"))
        self.group_ids = tuple(i for i in ids if i[:1] == "S")
        ignored = [i for i in ids if i[:1] not in ("U", "W", "S")]
        if ignored:
            log.warning("FITGLUE_SUPPORT_SLACK_IDS: ignoring %s (not a U…/W… user or S… user-group id)",
                        ", ".join(ignored))
        self.ttl_s = ttl_s
        self._monotonic = monotonic
        self._groups: dict[str, tuple[float, frozenset[str]]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    @property
    def empty(self) -> bool:
        return not self.user_ids and not self.group_ids

    async def allows(self, user_id: str | None, client: AsyncWebClient) -> bool:
        if not user_id:
            return False
        if user_id in self.user_ids:
            return True
        for group in self.group_ids:
            if user_id in await self._members(group, client):
                return True
        return False

    async def _members(self, group: str, client: AsyncWebClient) -> frozenset[str]:
        cached = self._groups.get(group)
        if cached and cached[0] > self._monotonic():
            return cached[1]
        lock = self._locks.setdefault(group, asyncio.Lock())
        async with lock:  # one lookup per group at a time, however many clicks arrive together
            cached = self._groups.get(group)
            if cached and cached[0] > self._monotonic():
                return cached[1]
            try:
                response: Any = await client.usergroups_users_list(usergroup=group)
                members = frozenset(response.get("users") or ())
            except Exception as exc:  # fail closed, whatever went wrong
                # Not cached: the next request tries again, and until then nobody gets in through the group.
                error = exc.response.get("error") if isinstance(exc, SlackApiError) and exc.response else exc
                log.warning("could not resolve Slack user group %s (%s); treating it as empty", group, error)
                return frozenset()
            self._groups[group] = (self._monotonic() + self.ttl_s, members)
            return members
