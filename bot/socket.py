"""Socket Mode: no public URL; the bot holds an outbound WebSocket opened with SLACK_APP_TOKEN.

Run it on one replica only: Slack hands each payload to one open connection at random.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable

from aiohttp import web
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp

log = logging.getLogger(__name__)

SOCKET_HANDLER = web.AppKey("slack_socket_mode", AsyncSocketModeHandler)


def socket_mode_context(bolt: AsyncApp, app_token: str) -> Callable[[web.Application], AsyncIterator[None]]:
    async def context(app: web.Application) -> AsyncIterator[None]:
        handler = AsyncSocketModeHandler(bolt, app_token=app_token)
        await handler.connect_async()  # not start_async(): that one never returns
        app[SOCKET_HANDLER] = handler
        log.info("Slack bot connected in Socket Mode")
        yield
        await handler.close_async()

    return context
