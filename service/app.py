"""The application factory: one place wires routes, background work and shared resources."""

from __future__ import annotations

from aiohttp import web

from .jobs.scheduler import scheduler_context
from .jobs.worker import worker_context
from .logging_setup import quiet_client_protocol_errors
from .runtime import Runtime
from .web import admin, connect, health, metrics, webhooks
from .web.bodies import body_reader
from .web.keys import RUNTIME
from .webhooks.subscription import ensure_after_connect

MAX_BODY_BYTES = 256 * 1024


def build_app(rt: Runtime, *, background: bool = True) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    quiet_client_protocol_errors()
    app[RUNTIME] = rt
    health.setup(app)
    admin.setup(app, rt)
    connect.setup(app)
    webhooks.setup(app)
    metrics.setup(app)
    # Innermost, after the admin guard: an unauthenticated admin request is refused unread.
    app.middlewares.append(body_reader(lambda: rt.settings.body_read_timeout_s, MAX_BODY_BYTES))
    if not any(getattr(hook, "ensures_webhook", False) for hook in rt.on_connected):
        rt.on_connected.append(ensure_after_connect(rt))
    if background:
        app.cleanup_ctx.append(scheduler_context(rt))
        intake = app[webhooks.INTAKE]
        # The worker takes a newly stored event at once instead of at its next poll.
        app.cleanup_ctx.append(worker_context(rt, wake_on=lambda wake: setattr(intake, "on_stored", wake),
                                              yield_to=intake.busy))
    return app
