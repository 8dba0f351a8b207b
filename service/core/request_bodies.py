"""Reading request bodies: whole, bounded in size, and bounded in time. The one place that does it.

A body arrives in pieces. `request.content.read(n)` answers with whatever has arrived so far, so a
client that pauses mid-body (as any client on a real network may) would be judged on half of it.
This middleware reads every request body completely before the route's handler runs, so handlers
use `await request.read()` / `.text()` and always see all of it (aiohttp keeps what was read), or
the request is answered here. Form fields come from `form_fields(request)`, never `request.post()`:
aiohttp's multipart reader needs the stream this middleware has already spent (a 500).

- more than the route's limit (`Content-Length` or counted while reading, so chunked bodies
  too): 413 `too_large`;
- not complete within `FITGLUE_BODY_READ_TIMEOUT_S` seconds of the handler being reached (a
  slow-drip client holding a connection open): 408 `body_timeout`, and the connection is closed;
- a `Content-Encoding` (gzip, deflate) the bytes do not decode with: 400 `bad_body` (aiohttp raises
  while reading, which would otherwise be a 500 with a traceback on any route, before any check);
- declared a form but not a well-formed one: 400 `bad_form`. Every route takes both kinds of
  form, as Strava's API does: `application/x-www-form-urlencoded` (UTF-8, valid percent-escapes,
  `name=value` fields: service.core.inputs.form_pairs) and `multipart/form-data` (a boundary and parts
  that follow it: service.core.inputs.multipart_pairs, text fields only).

Nothing has been stored or changed when either answer is given. Slow *headers* are not covered:
aiohttp's server has no header-read timeout (see the README's production notes).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiohttp import web
from aiohttp.typedefs import Middleware
from multidict import MultiDict, MultiDictProxy

from service.core.inputs import BadInput, form_pairs, multipart_pairs

DEFAULT_MAX_BYTES = 256 * 1024
DEFAULT_TIMEOUT_S = 10.0

FORM = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"
_LIMIT_ATTR = "_fitglue_max_body_bytes"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
F = TypeVar("F", bound=Callable[..., Any])


def max_body(limit: int) -> Callable[[F], F]:
    """Decorator: this route accepts bodies of at most `limit` bytes (instead of the app's default)."""

    def mark(handler: F) -> F:
        setattr(handler, _LIMIT_ATTR, limit)
        return handler

    return mark


def _error(status: int, code: str, message: str, **headers: str) -> web.Response:
    return web.json_response({"error": code, "message": message}, status=status,
                             headers={"Cache-Control": "no-store", **headers})


def too_large(limit: int) -> web.Response:
    return _error(413, "too_large", f"the request body may be at most {limit} bytes")


def _limit_for(request: web.Request, default: int) -> int:
    return int(getattr(request.match_info.handler, _LIMIT_ATTR, default))


def body_reader(timeout_s: float | Callable[[], float] = DEFAULT_TIMEOUT_S,
                default_max_bytes: int = DEFAULT_MAX_BYTES) -> Middleware:
    """The middleware. `timeout_s` may be a callable, read per request (settings can change in tests)."""

    @web.middleware
    async def read_whole_body(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.body_exists or request.match_info.http_exception is not None:
            return await handler(request)
        limit = _limit_for(request, default_max_bytes)
        if request.content_length is not None and request.content_length > limit:
            return too_large(limit)
        arrived = request.content.total_bytes
        # aiohttp's own read refuses client_max_size bytes or more (0: no limit). The app's
        # client_max_size is also the default route limit: a body of exactly that many bytes (or a
        # route allowing more than the app) takes the bounded copy below, never this read's 413.
        if (request.content.is_eof() and arrived <= limit
                and (not request.client_max_size or arrived < request.client_max_size)):
            # All of it has arrived already (a small body comes with its headers): nothing to wait for
            # and its size is known, so no clock and no bounded copy of the request (measured: those
            # two were 6 % of the event loop under wrk; bench/README.md).
            whole, refused = request, await _read_or_refuse(request, limit, None)
        else:
            # aiohttp refuses a body of client_max_size bytes or more; +1 lets exactly `limit` through.
            whole = request.clone(client_max_size=limit + 1)
            refused = await _read_or_refuse(whole, limit, timeout_s() if callable(timeout_s) else timeout_s)
        if refused is not None:
            return refused
        if whole.content_type in (FORM, MULTIPART):  # checked here, so a malformed form is a 400 on every route
            try:
                await form_fields(whole)
            except BadInput as exc:
                return _error(400, "bad_form", str(exc))
        return await handler(whole)

    return read_whole_body


async def _read_or_refuse(request: web.Request, limit: int, seconds: float | None) -> web.Response | None:
    """Read the whole body into `request` (within `seconds`, if given): None, or the answer refusing it."""
    try:
        if seconds is None:
            await request.read()
        else:
            async with asyncio.timeout(seconds):
                await request.read()
    except web.HTTPRequestEntityTooLarge:
        return too_large(limit)
    except web.RequestPayloadError:
        # The stream holds the error: marked ended, aiohttp does not read it again after the answer
        # (its "lingering" read would raise it once more and log a traceback at ERROR).
        request.content.feed_eof()
        return _error(400, "bad_body", "the request body could not be decoded as its Content-Encoding says",
                      Connection="close")
    except TimeoutError:
        return _error(408, "body_timeout", f"the request body did not arrive within {seconds:g} seconds",
                      Connection="close")
    return None


async def form_fields(request: web.Request) -> MultiDictProxy[str]:
    """The fields of a form body (urlencoded or multipart; file parts ignored), in order, repeated
    names kept, like aiohttp's `post()`, but from the bytes the middleware has read. Empty when the
    body is not a form. Raises BadInput for a malformed form (the middleware answers those 400)."""
    pairs: list[tuple[str, str]] = []
    if request.body_exists and request.content_type == FORM:
        pairs = form_pairs(await request.read())
    elif request.body_exists and request.content_type == MULTIPART:
        pairs = multipart_pairs(request.headers.get("Content-Type", ""), await request.read())
    return MultiDictProxy(MultiDict(pairs))
