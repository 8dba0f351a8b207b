"""HTML pages from Jinja2 templates with auto-escaping, and the headers every page carries."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from jinja2 import Environment, PackageLoader, select_autoescape

from service.web.keys import RUNTIME

_env = Environment(loader=PackageLoader("service.web", "templates"), autoescape=select_autoescape(["html"]))

PAGE_HEADERS = {
    # The page URL holds the link token: never send it on to Strava or anyone else as a Referer.
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self' https: http:; "
    "frame-ancestors 'none'",
}


def render(request: web.Request, template: str, status: int = 200, **context: Any) -> web.Response:
    rt = request.app[RUNTIME]
    html = _env.get_template(template).render(sandbox=rt.settings.sandbox, **context)
    return web.Response(text=html, status=status, content_type="text/html", headers=PAGE_HEADERS)
