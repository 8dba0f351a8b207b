"""The one place that mounts optional parts (the Slack bot, webhook processing) onto the service.

The service never imports `bot` anywhere else.
"""

from __future__ import annotations

from aiohttp import web

from .runtime import Runtime


async def wire_optional_parts(app: web.Application, rt: Runtime) -> None:
    return None
