"""The application factory: one place wires routes, background work and shared resources."""

from __future__ import annotations

from aiohttp import web

from .jobs.scheduler import scheduler_context
from .runtime import Runtime
from .web import connect, health
from .web.keys import RUNTIME

MAX_BODY_BYTES = 256 * 1024


def build_app(rt: Runtime, *, background: bool = True) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app[RUNTIME] = rt
    health.setup(app)
    connect.setup(app)
    if background:
        app.cleanup_ctx.append(scheduler_context(rt))
    return app
