"""`POST /internal/api/strava/token`: a valid Strava access token for FitGlue's other services.

Bearer `FITGLUE_TOKEN_API_KEY` (its own key, not the admin token), compared in constant time: 401
when wrong or missing, and the body is never read then; while the key is unset the route answers
404. Every answer carries `Cache-Control: no-store`. The body and the answers are the README's
"Access-token endpoint"; the work is `service.desk.token_desk.TokenDesk`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import web

from service.core.crypto import constant_time_equals
from service.core.request_bodies import max_body
from service.core.runtime import Runtime
from service.core.settings import reveal
from service.desk.token_desk import TokenDesk, TokenRefused
from service.web.keys import RUNTIME

PATH = "/internal/api/strava/token"
MAX_BODY_BYTES = 4096  # {"who": a 320-character e-mail, "min_valid_s": 3600} fits many times over
DESK = web.AppKey("token_desk", TokenDesk)
NO_STORE = {"Cache-Control": "no-store"}

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None,
           extra: dict[str, Any] | None = None) -> web.Response:
    return web.json_response({"error": code, "message": message, **(extra or {})}, status=status,
                             headers={**NO_STORE, **(headers or {})})


def _authorized(request: web.Request, key: str) -> bool:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and constant_time_equals(given.strip(), key)


@web.middleware
async def token_guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Only for PATH: the off switch and the key, before the body is read; JSON and no-store always."""
    if request.path != PATH:
        return await handler(request)
    key = reveal(request.app[RUNTIME].settings.token_api_key)
    if not key:
        return _error(404, "not_found", "Not Found")
    if not _authorized(request, key):
        request.app[DESK].refused_unauthorized()
        return _error(401, "unauthorized", "a valid bearer key is required (FITGLUE_TOKEN_API_KEY)",
                      {"WWW-Authenticate": 'Bearer realm="fitglue-token"'})
    try:
        response = await handler(request)
    except web.HTTPException as exc:  # 405 for another method, 413 and 408 from the body reader
        if exc.status < 400:
            raise
        return _error(exc.status, exc.reason.lower().replace(" ", "_"), exc.reason)
    except Exception:
        log.exception("token API: the call failed unexpectedly")
        return _error(500, "internal", "the call failed unexpectedly; see the service log")
    response.headers.update(NO_STORE)
    return response


@max_body(MAX_BODY_BYTES)
async def issue_token(request: web.Request) -> web.Response:
    try:
        body = await request.app[DESK].issue(await request.read())
    except TokenRefused as exc:
        headers = {"Retry-After": str(exc.retry_after_s)} if exc.retry_after_s is not None else None
        extra = {"status": exc.status} if exc.status is not None else None
        return _error(exc.http_status, exc.code, exc.public_message, headers, extra)
    return web.json_response(body, headers=NO_STORE)


def desk_context(rt: Runtime) -> Callable[[web.Application], AsyncIterator[None]]:
    """The endpoint's desk opens with the app and closes with it (its reader holds a database thread
    on SQLite). `token_guard` goes in the app's middlewares, `issue_token` in service.web.routes."""

    async def context(app: web.Application) -> AsyncIterator[None]:
        app[DESK] = desk = TokenDesk(rt)
        yield
        await desk.close()

    return context
