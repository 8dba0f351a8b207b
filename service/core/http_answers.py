"""Reading what another server answers (Strava, our own public callback, the events receiver),
never more than we are prepared to hold: a body is read up to a limit, and past it the connection is
closed instead of drained. aiohttp's `read()` takes the whole body, however large (or endless, or
however far a compressed one expands)."""

from __future__ import annotations

import aiohttp


async def read_at_most(response: aiohttp.ClientResponse, limit: int) -> bytes | None:
    """The body (decompressed, as aiohttp delivers it), or None when it is longer than `limit`
    bytes: then the connection is closed, not reused. Raises what reading raises
    (aiohttp.ClientError, TimeoutError)."""
    parts: list[bytes] = []
    size = 0
    while chunk := await response.content.readany():
        size += len(chunk)
        if size > limit:
            response.close()
            return None
        parts.append(chunk)
    return b"".join(parts)
