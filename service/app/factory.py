"""The application factory: routes from one table, shared resources opened and closed with the app.

`build_app` only builds: it changes nothing outside the application it returns. What must be
opened, installed or started (the webhook intake, the token endpoint's desk, the after-Connect hook, aiohttp's quieter
server log, the scheduler, the queue worker) is an aiohttp `cleanup_ctx`: it opens when the app
starts and closes, in reverse order, when it stops. The runtime itself (database engine, HTTP
session) is opened by the caller (`service.app.bootstrap.open_runtime`), which also closes it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from aiohttp import web

from service.background.loops import LoopHooks, background_context
from service.background.webhooks.intake import EventIntake
from service.background.webhooks.receiver import IntakeReceiver
from service.core.logs import quiet_client_protocol_errors
from service.core.request_bodies import body_reader
from service.core.runtime import Runtime
from service.desk.support_desk import SupportDesk
from service.subscription.registration import ensure_after_connect
from service.web import token_api
from service.web.admin import DESK, admin_guard
from service.web.keys import RUNTIME
from service.web.routes import ROUTES
from service.web.strava_webhook import INTAKE

MAX_BODY_BYTES = 256 * 1024
# The intake behind the route's EventReceiver: the worker is woken by it and gives way to its bursts.
EVENT_INTAKE = web.AppKey("event_intake", EventIntake)


def build_app(rt: Runtime, *, background: bool = True) -> web.Application:
    """The service's aiohttp application over `rt`; with `background`, the scheduler and the queue
    worker run while it runs."""
    # The body reader is innermost, after the admin and token guards: an unauthenticated request to
    # either API is refused unread.
    app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[
        admin_guard, token_api.token_guard, body_reader(lambda: rt.settings.body_read_timeout_s, MAX_BODY_BYTES)])
    app[RUNTIME] = rt
    app[DESK] = SupportDesk(rt)
    for method, path, handler in ROUTES:
        app.router.add_route(method, path, handler)
    app.cleanup_ctx.append(_connect_hooks(rt))
    app.cleanup_ctx.append(_webhook_intake(rt))
    app.cleanup_ctx.append(token_api.desk_context(rt))
    if background:  # the background loops on this event loop (tests); `fitglue serve` uses a thread
        app.cleanup_ctx.append(background_context(rt, intake_hooks(app)))
    return app


def intake_hooks(app: web.Application) -> LoopHooks:
    """The worker takes a newly stored event at once instead of at its next poll, and gives way while
    a burst of events is arriving (the intake opens with the app, so both are looked up late)."""
    return LoopHooks(wake_on=lambda wake: setattr(app[EVENT_INTAKE], "on_stored", wake),
                     yield_to=lambda: app[EVENT_INTAKE].busy())


def _connect_hooks(rt: Runtime) -> Callable[[web.Application], AsyncIterator[None]]:
    """From the app's start: client protocol errors log one line, and every Connect makes sure the
    push subscription exists (the runtime's one hook, added once however many apps share the runtime)."""

    async def context(app: web.Application) -> AsyncIterator[None]:
        quiet_client_protocol_errors()
        if ensure_after_connect(rt) not in rt.on_connected:
            rt.on_connected.append(ensure_after_connect(rt))
        yield

    return context


def _webhook_intake(rt: Runtime) -> Callable[[web.Application], AsyncIterator[None]]:
    """The webhook intake opens with the app (the route gets it as the desk's `EventReceiver`) and
    closes with it, finishing the stores under way."""

    async def context(app: web.Application) -> AsyncIterator[None]:
        app[EVENT_INTAKE] = intake = EventIntake(rt)
        app[INTAKE] = receiver = IntakeReceiver(intake)
        yield
        await receiver.close()

    return context
