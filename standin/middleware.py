"""Around every request: record it, add latency, inject failures, count rate limits."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from enum import Enum

from aiohttp import web

from standin.calls import CURRENT_CALL
from standin.config import CallRecord
from standin.faults import RATE_LIMIT_EXCEEDED, RESOURCE_NOT_FOUND
from standin.keys import STANDIN_KEY
from standin.standin import canonical_path

INJECTED_TIMEOUT_S = 30.0

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Metering(Enum):
    NONE = "none"  # pages and token calls: no headers, not counted
    HEADERS = "headers"  # app-level subscription calls: headers, not counted
    COUNTED = "counted"  # API and deauthorize: headers, counted, may be refused with 429


def metering(path: str) -> Metering:
    path = canonical_path(path)
    if path.startswith("/oauth/deauthorize"):
        return Metering.COUNTED
    if path.startswith("/api/v3/push_subscriptions"):
        return Metering.HEADERS
    if path.startswith("/api/v3/"):
        return Metering.COUNTED
    return Metering.NONE


@web.middleware
async def standin_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    standin = request.app[STANDIN_KEY]
    record = CallRecord(method=request.method, path=request.path, at=standin.clock.now())
    standin.calls.append(record)
    token = CURRENT_CALL.set(record)
    try:
        if standin.config.latency_s > 0:
            await asyncio.sleep(standin.config.latency_s)
        meter = metering(request.path)
        failure = standin.failures.take(request.path, canonical_path(request.path))
        response: web.StreamResponse
        outage = standin.outage
        if outage is not None and outage.active(standin.clock.now()) and _strava_call(request.path):
            if outage.kind == "timeout":
                await standin.stall(INJECTED_TIMEOUT_S)
            response = web.json_response({"message": "Service Unavailable", "errors": []}, status=503)
        elif failure is not None:
            if failure.timeout:
                await standin.stall(INJECTED_TIMEOUT_S)
            response = web.json_response(failure.body, status=failure.status)
        elif meter is Metering.COUNTED and not standin.limits.hit(standin.clock.now()):
            response = web.json_response(RATE_LIMIT_EXCEEDED, status=429)
        else:
            response = await _handle(request, handler)
        if meter is not Metering.NONE:
            response.headers.update(standin.limits.headers(standin.clock.now()))
        record.status = response.status
        return response
    finally:
        CURRENT_CALL.reset(token)


def _strava_call(path: str) -> bool:
    """A call the app makes (API, token, deauthorize, subscriptions), not a person's page."""
    path = canonical_path(path)
    return path.startswith("/api/v3/") or path.startswith(("/oauth/token", "/oauth/deauthorize"))


async def _handle(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as exc:  # router misses (404/405) and anything a handler raised
        if request.path.startswith("/api/v3/"):
            body = RESOURCE_NOT_FOUND if exc.status == 404 else {"message": exc.reason, "errors": []}
            return web.json_response(body, status=exc.status)
        keep = {k: v for k, v in exc.headers.items() if k.lower() not in ("content-type", "content-length")}
        return web.Response(status=exc.status, text=exc.text or exc.reason, headers=keep)
