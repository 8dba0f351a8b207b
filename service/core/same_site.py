"""Did a browser post this form from a page of another site? For the local stand-ins' own forms (the
Strava stand-in's consent and control pages, the local Slack's page), which change their state
without a form token. The service's own pages use `service.web.same_origin`, which also checks one.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.typedefs import Handler


def sent_by_another_site(request: web.Request) -> bool:
    """A browser says this form was posted from a page on another site.

    `Sec-Fetch-Site` decides when present; otherwise an `Origin` that is not this server's. Requests
    that carry neither header (scripts, tests, a service calling it) are not a browser's, and pass.
    """
    fetch_site = (request.headers.get("Sec-Fetch-Site") or "").lower()
    if fetch_site in ("same-origin", "none"):
        return False
    if fetch_site == "cross-site":
        return True
    origin = (request.headers.get("Origin") or "").lower()
    return bool(origin) and origin != "null" and origin != f"{request.scheme}://{request.host}".lower()


LOOPBACK_NAMES = frozenset({"localhost", "::1"})


def named_as_loopback(request: web.Request) -> bool:
    """The request's `Host` names this machine's loopback (`localhost`, `127.x.x.x`, `[::1]`, any port).

    Binding to 127.0.0.1 keeps other machines out, but not other websites: a page whose own name is
    made to resolve to 127.0.0.1 (DNS rebinding) is "same origin" with whatever it then reaches, so
    `Sec-Fetch-Site`/`Origin` checks pass and it can read the answers. Its `Host` is its own name, though.
    """
    try:
        name = (urlsplit("//" + (request.headers.get("Host") or "")).hostname or "").lower()
    except ValueError:  # a malformed Host (an unclosed "[", a bad port)
        return False
    return name in LOOPBACK_NAMES or (name.startswith("127.") and name.replace(".", "").isdigit()
                                      and name.count(".") == 3)


@web.middleware
async def loopback_names_only(request: web.Request, handler: Handler) -> web.StreamResponse:
    """For the loopback-only stand-ins: refuse (421) a request addressed to any other name."""
    if not named_as_loopback(request):
        return web.Response(status=421, text="this local stand-in answers only to localhost or 127.0.0.1\n")
    return await handler(request)
