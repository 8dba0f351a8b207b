"""FitGlue's other services, stood in: a receiver of the outbound events (`fitglue serve --sandbox`,
the tests, the benchmark) that verifies every delivery with the Standard Webhooks reference library,
as a real receiver would, and keeps what it got.

It answers 2xx to a delivery whose signature verifies (or what `answer` says, to play a receiver
that is down), 401 to one that does not. The stand-in's control page lists what arrived.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from standardwebhooks import Webhook, WebhookVerificationError

PATH = "/fitglue/events"


@dataclass(frozen=True)
class ReceivedEvent:
    webhook_id: str
    webhook_timestamp: str
    verified: bool
    status: int  # what the receiver answered
    body: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    arrived: float = 0.0  # time.monotonic() on arrival (the benchmark's lag)

    @property
    def type(self) -> str:
        return str(self.body.get("type", ""))

    @property
    def data(self) -> dict[str, Any]:
        data = self.body.get("data")
        return data if isinstance(data, dict) else {}


class EventReceiver:
    def __init__(self, secret: str | None = None) -> None:
        self.secret = secret
        self.path = PATH
        self.received: list[ReceivedEvent] = []
        # The status to answer a verified delivery with (default 200): a test plays a receiver that is down.
        self.answer: Callable[[ReceivedEvent], int] = lambda _event: 200
        self._arrivals = asyncio.Condition()

    def accepted(self) -> list[ReceivedEvent]:
        """Deliveries that verified and were answered 2xx, in arrival order."""
        return [e for e in self.received if e.verified and 200 <= e.status < 300]

    async def wait_for(self, count: int, timeout_s: float = 10.0) -> list[ReceivedEvent]:
        """Wait until `count` deliveries were accepted; the accepted ones. TimeoutError otherwise."""
        async def enough() -> None:
            async with self._arrivals:
                await self._arrivals.wait_for(lambda: len(self.accepted()) >= count)

        await asyncio.wait_for(enough(), timeout_s)
        return self.accepted()

    def _verify(self, body: bytes, headers: dict[str, str]) -> tuple[dict[str, Any], str | None]:
        if not self.secret:
            return {}, "the receiver has no secret to verify with"
        try:
            payload = Webhook(self.secret).verify(body, headers)
        except (WebhookVerificationError, ValueError) as exc:
            return {}, f"signature not verified: {exc}"
        return (payload if isinstance(payload, dict) else {}), None

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = {name.lower(): value for name, value in request.headers.items()}
        payload, error = self._verify(body, headers)
        event = ReceivedEvent(headers.get("webhook-id", ""), headers.get("webhook-timestamp", ""), error is None,
                              0, payload or _loose(body), error, time.monotonic())
        status = self.answer(event) if error is None else 401
        self.received.append(ReceivedEvent(event.webhook_id, event.webhook_timestamp, event.verified, status,
                                           event.body, event.error, event.arrived))
        async with self._arrivals:
            self._arrivals.notify_all()
        return web.json_response({"ok": 200 <= status < 300}, status=status)

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post(self.path, self.handle)


def _loose(body: bytes) -> dict[str, Any]:
    """The body as far as it parses (shown for a delivery that did not verify)."""
    try:
        parsed = json.loads(body)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


async def start_event_receiver(secret: str, host: str = "127.0.0.1",
                               port: int = 0) -> tuple[EventReceiver, web.AppRunner, str]:
    """Serve a receiver on its own; returns it, its runner (`await runner.cleanup()`) and its URL."""
    receiver = EventReceiver(secret)
    app = web.Application()
    receiver.add_routes(app)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    bound = runner.addresses[0][1] if runner.addresses else port
    return receiver, runner, f"http://{host}:{bound}{PATH}"
