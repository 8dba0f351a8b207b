"""`/webhooks/strava`: Strava's validation GET and event POSTs.

POST never calls Strava: it validates, stores the event and its job (see service.background.webhooks.intake)
and answers 200 within milliseconds; 503 when it cannot store, so Strava delivers again.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import web

from service.background.webhooks.intake import EventIntake, IntakeUnavailable
from service.background.webhooks.strava_events import BadEvent, parse_event
from service.core.crypto import constant_time_equals
from service.core.request_bodies import max_body
from service.core.settings import reveal
from service.web.keys import RUNTIME

PATH = "/webhooks/strava"
MAX_EVENT_BYTES = 16 * 1024  # a real event is a few hundred bytes
RECEIVED = "fitglue_webhook_events_received_total"

INTAKE = web.AppKey("webhook_intake", EventIntake)

log = logging.getLogger(__name__)


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": code, "message": message}, status=status)


async def validate_subscription(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    query = request.query
    challenge = query.get("hub.challenge")
    if (query.get("hub.mode") == "subscribe" and challenge is not None
            and constant_time_equals(query.get("hub.verify_token"),
                                     reveal(rt.settings.strava_webhook_verify_token))):
        return web.json_response({"hub.challenge": challenge})
    return _error(403, "forbidden", "not a valid subscription validation request")


@max_body(MAX_EVENT_BYTES)
async def receive_event(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    raw = await request.read()  # the whole body: service.core.request_bodies has read it (bounded, timed)
    try:
        event = parse_event(raw)
    except BadEvent as exc:
        rt.metrics.inc(RECEIVED, "rejected")
        return _error(400, "bad_event", str(exc))
    intake = request.app[INTAKE]
    try:
        if await intake.is_foreign(event.subscription_id):
            rt.metrics.inc(RECEIVED, "foreign")
            return web.json_response({"status": "ignored"})
        stored = await intake.submit(event)
    except Exception as exc:  # IntakeUnavailable, or the database failing in the ownership check
        if not isinstance(exc, IntakeUnavailable):
            log.warning("webhook event not stored: %s", type(exc).__name__)
        rt.metrics.inc(RECEIVED, "error")
        return _error(503, "unavailable", "the event could not be stored; please deliver it again")
    rt.metrics.inc(RECEIVED, "stored" if stored else "duplicate")
    return web.json_response({"status": "stored" if stored else "duplicate"})


async def intake_context(app: web.Application) -> AsyncIterator[None]:
    """The webhook intake opens with the app and closes with it (its batch writer, on SQLite its thread)."""
    app[INTAKE] = EventIntake(app[RUNTIME])
    yield
    await app[INTAKE].close()
