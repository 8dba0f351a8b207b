"""Socket Mode as Slack documents it ("Using Socket Mode"): `apps.connections.open`, called with the
app-level token, returns a single-use `ws://` URL on loopback; a connection is greeted with `hello`;
each request travels as an envelope (`envelope_id`, `type`: `slash_commands`, `interactive` or
`events_api`, `payload`, `accepts_response_payload`) and is answered by an acknowledgement that
repeats the `envelope_id` and may carry a `payload` (a slash command's immediate reply).

When several connections are open, each envelope goes to one of them, as at Slack. `drop_all()` closes
every connection, as Slack does when it rotates them; clients are expected to reconnect.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from sandbox_slack.workspace import APP_ID

log = logging.getLogger("sandbox_slack.socket_mode")

PATH = "/socket-mode"


class NoConnection(Exception):
    """No Socket Mode client is connected, or it did not acknowledge in time."""


@dataclass
class SocketHub:
    tickets: set[str] = field(default_factory=set)
    connections: list[web.WebSocketResponse] = field(default_factory=list)
    pending: dict[str, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)
    _turn: int = 0

    @property
    def connected(self) -> bool:
        return any(not ws.closed for ws in self.connections)

    def open_url(self, base_ws_url: str) -> str:
        ticket = secrets.token_urlsafe(16)
        self.tickets.add(ticket)
        return f"{base_ws_url}{PATH}?ticket={ticket}"

    async def deliver(self, kind: str, payload: dict[str, Any], timeout_s: float,
                      accepts_response_payload: bool = False) -> dict[str, Any]:
        """Send one envelope and wait for its acknowledgement; returns the ack's payload ({} when none).
        Raises NoConnection when nobody is connected or no ack comes within ``timeout_s``."""
        open_ones = [ws for ws in self.connections if not ws.closed]
        if not open_ones:
            raise NoConnection("no Socket Mode connection is open")
        self._turn += 1
        ws = open_ones[self._turn % len(open_ones)]
        envelope_id = secrets.token_hex(16)
        acked: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[envelope_id] = acked
        try:
            await ws.send_json({"envelope_id": envelope_id, "type": kind, "payload": payload,
                                "accepts_response_payload": accepts_response_payload,
                                "retry_attempt": 0, "retry_reason": ""})
            async with asyncio.timeout(timeout_s):
                return await acked
        except (TimeoutError, ConnectionError) as exc:
            raise NoConnection(f"the Socket Mode client did not acknowledge ({type(exc).__name__})") from None
        finally:
            self.pending.pop(envelope_id, None)

    async def drop_all(self) -> int:
        """Close every connection (a client should open a new one); how many were open."""
        open_ones = [ws for ws in self.connections if not ws.closed]
        for ws in open_ones:
            await ws.close(message=b"sandbox dropped the connection")
        return len(open_ones)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        ticket = request.query.get("ticket", "")
        if ticket not in self.tickets:
            return web.Response(status=401, text="unknown or used Socket Mode ticket")
        self.tickets.discard(ticket)
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self.connections.append(ws)
        await ws.send_json({"type": "hello", "num_connections": len(self.connections),
                            "debug_info": {"host": "sandbox-slack"}, "connection_info": {"app_id": APP_ID}})
        try:
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    self._acknowledged(message.data)
        finally:
            self.connections.remove(ws)
        return ws

    def _acknowledged(self, data: str) -> None:
        try:
            ack = json.loads(data)
        except ValueError:
            log.info("ignored a Socket Mode message that is not JSON")
            return
        waiting = self.pending.get(str(ack.get("envelope_id"))) if isinstance(ack, dict) else None
        if waiting is not None and not waiting.done():
            payload = ack.get("payload")
            waiting.set_result(payload if isinstance(payload, dict) else {})

    async def close(self) -> None:
        await self.drop_all()

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get(PATH, self.handle)
