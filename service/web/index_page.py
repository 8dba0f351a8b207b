"""`GET /`: in production one line naming the service (no links, no data); in the sandbox, the page
that makes everything reachable (the Connect link, the local Slack, the stand-in's controls, the admin
API and its token, the `export` line for the CLI)."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from service.core.same_site import named_as_loopback
from service.web.keys import RUNTIME
from service.web.pages import render

SERVICE_LINE = "FitGlue: the Strava connection service.\n"


@dataclass
class SandboxFrontPage:
    """What `fitglue serve --sandbox` shows at start and at `/`: URLs, the admin token, the shell line
    (rewritten when a setting it holds changes, e.g. the capacity from the stand-in's controls)."""

    connect_url: str
    connect_email: str
    slack_url: str
    control_url: str
    admin_base: str
    admin_token: str
    export_line: str
    export_file: str


SANDBOX_FRONT_PAGE = web.AppKey("sandbox_front_page", SandboxFrontPage)


async def index(request: web.Request) -> web.Response:
    front = request.app.get(SANDBOX_FRONT_PAGE)
    # The sandbox's page holds its secrets (admin token, secret key): only for a request addressed to
    # loopback, never to a website that rebinds its own name to 127.0.0.1 (service.core.same_site).
    if front is None or not request.app[RUNTIME].settings.sandbox or not named_as_loopback(request):
        return web.Response(text=SERVICE_LINE, content_type="text/plain",
                            headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})
    return render(request, "sandbox_index.html", front=front)
