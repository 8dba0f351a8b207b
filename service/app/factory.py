"""The application factory: one place wires routes, background work and shared resources."""

from __future__ import annotations

from aiohttp import web

from service.background.job_handlers import worker_context
from service.background.scheduler import scheduler_context
from service.background.webhooks.intake import EventIntake
from service.background.webhooks.receiver import IntakeReceiver
from service.core.logs import quiet_client_protocol_errors
from service.core.request_bodies import body_reader
from service.core.runtime import Runtime
from service.subscription.registration import ensure_after_connect
from service.web import admin, health, index_page
from service.web import connect_pages as connect
from service.web import prometheus as metrics
from service.web import strava_webhook as webhooks
from service.web.keys import RUNTIME

MAX_BODY_BYTES = 256 * 1024


def build_app(rt: Runtime, *, background: bool = True) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    quiet_client_protocol_errors()
    app[RUNTIME] = rt
    index_page.setup(app)
    health.setup(app)
    admin.setup(app, rt)
    connect.setup(app)
    intake = EventIntake(rt)
    webhooks.setup(app, IntakeReceiver(intake))
    metrics.setup(app)
    # Innermost, after the admin guard: an unauthenticated admin request is refused unread.
    app.middlewares.append(body_reader(lambda: rt.settings.body_read_timeout_s, MAX_BODY_BYTES))
    if not any(getattr(hook, "ensures_webhook", False) for hook in rt.on_connected):
        rt.on_connected.append(ensure_after_connect(rt))
    if background:
        app.cleanup_ctx.append(scheduler_context(rt))
        # The worker takes a newly stored event at once instead of at its next poll.
        app.cleanup_ctx.append(worker_context(rt, wake_on=lambda wake: setattr(intake, "on_stored", wake),
                                              yield_to=intake.busy))
    return app
