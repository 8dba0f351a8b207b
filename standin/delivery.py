"""The stand-in's only outgoing HTTP: the subscription validation GET and event POSTs.

One ClientSession, created on first use and closed with the app. Requests go only to the
callback URL a subscription request named.
"""

from __future__ import annotations

from typing import Any

import aiohttp
from yarl import URL

from service.core.inputs import BadInput, parse_json

# Strava gives callbacks two seconds to answer, for the validation GET and for each event.
CALLBACK_TIMEOUT_S = 2.0


class Outbox:
    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=CALLBACK_TIMEOUT_S),
                headers={"User-Agent": "strava-sandbox-standin"},
            )
        return self._session

    async def verify_callback(self, callback_url: str, verify_token: str, challenge: str) -> bool:
        """True when the callback answers 200 with JSON echoing ``hub.challenge``."""
        try:
            url = URL(callback_url).extend_query(
                {"hub.verify_token": verify_token, "hub.challenge": challenge, "hub.mode": "subscribe"}
            )
            async with self._client().get(url, allow_redirects=False) as resp:
                if resp.status != 200:
                    return False
                body = parse_json(await resp.read())
        except (aiohttp.ClientError, TimeoutError, BadInput):
            return False
        return isinstance(body, dict) and body.get("hub.challenge") == challenge

    async def post_event(self, callback_url: str, event: dict[str, Any]) -> int:
        """The callback's status, or 0 when it did not answer within the deadline."""
        try:
            async with self._client().post(callback_url, json=event, allow_redirects=False) as resp:
                await resp.read()
                return resp.status
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return 0

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
