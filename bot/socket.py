"""Socket Mode: no public URL; the bot holds an outbound WebSocket opened with SLACK_APP_TOKEN.

Run it on one replica only: Slack hands each payload to one open connection at random.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable

from aiohttp import web
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp

from bot.app import held_by
from service.core.runtime import Runtime

log = logging.getLogger(__name__)

SOCKET_HANDLER = web.AppKey("slack_socket_mode", AsyncSocketModeHandler)


def socket_mode_context(bolt: AsyncApp, app_token: str, rt: Runtime) -> Callable[[web.Application], AsyncIterator[None]]:
    async def context(app: web.Application) -> AsyncIterator[None]:
        handler = AsyncSocketModeHandler(bolt, app_token=app_token)
        # slack_sdk runs each message (Bolt's dispatch: the access check and its audit entry, then
        # the listener's start) in a task nothing holds, and close_async() does not wait for it:
        # held, `Runtime.close` waits for it before the database pool closes (service.core.wind_down).
        # (ignore: slack_bolt's own handler narrows the client type the same way when it registers.)
        handler.client.socket_mode_request_listeners[:] = [held_by(rt, handler.handle)]  # type: ignore[list-item]
        await handler.connect_async()  # not start_async(): that one never returns
        app[SOCKET_HANDLER] = handler
        log.info("Slack bot connected in Socket Mode")
        yield
        await handler.close_async()

    return context
