"""Did a browser post this form from a page of another site? For the local stand-ins' own forms (the
Strava stand-in's consent and control pages, the local Slack's page), which change their state
without a form token. The service's own pages use `service.web.same_origin`, which also checks one.
"""

from __future__ import annotations

from aiohttp import web


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
