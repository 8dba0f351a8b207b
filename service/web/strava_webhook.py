"""`/webhooks/strava`: Strava's validation GET and event POSTs.

POST never calls Strava: it hands the body to the intake (`service.desk.webhook_intake`, which the
app factory opens with the app and closes with it), which validates and stores the event and its job, and answers 200 within
milliseconds; 503 when it cannot store, so Strava delivers again.
"""

from __future__ import annotations

import json

from aiohttp import web

from service.core.crypto import constant_time_equals
from service.core.request_bodies import max_body
from service.core.settings import reveal
from service.desk.webhook_intake import DUPLICATE, FOREIGN, REJECTED, STORED, UNAVAILABLE, EventReceiver
from service.web.keys import RUNTIME

PATH = "/webhooks/strava"
MAX_EVENT_BYTES = 16 * 1024  # a real event is a few hundred bytes
RECEIVED = "fitglue_webhook_events_received_total"

INTAKE = web.AppKey("webhook_intake", EventReceiver)
# The success answers' bodies, encoded once: Strava may deliver hundreds a second.
_ANSWERED = {outcome: json.dumps({"status": "ignored" if outcome == FOREIGN else outcome}).encode()
             for outcome in (STORED, DUPLICATE, FOREIGN)}


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
    receipt = await request.app[INTAKE].receive(raw)
    rt.metrics.inc(RECEIVED, receipt.outcome)
    if receipt.outcome == REJECTED:
        return _error(400, "bad_event", receipt.problem)
    if receipt.outcome == UNAVAILABLE:
        return _error(503, "unavailable", "the event could not be stored; please deliver it again")
    return web.Response(body=_ANSWERED[receipt.outcome], content_type="application/json", charset="utf-8")
