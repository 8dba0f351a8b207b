"""Pages for a person trying the flow by hand: see athletes, revoke access, add an activity.

They stand in for the athlete's own Strava screens (settings, recording a run). Loopback only.
"""

from __future__ import annotations

from aiohttp import web

from standin.calls import note_athlete
from standin.keys import STANDIN_KEY
from standin.requests import path_id, sent_by_another_site
from standin.templates import index_page, other_site_page


async def index(request: web.Request) -> web.Response:
    standin = request.app[STANDIN_KEY]
    html = index_page(
        base_url=standin.base_url or f"{request.scheme}://{request.host}",
        client_id=standin.config.client_id,
        client_secret=standin.config.client_secret,
        athletes=standin.state.athletes.values(),
        connected=set(standin.state.grants),
        subscription_url=standin.subscription["callback_url"] if standin.subscription else None,
        events=standin.events.received,
    )
    return web.Response(text=html, content_type="text/html")


def _athlete(request: web.Request) -> int:
    athlete_id = path_id(request.match_info["athlete_id"])
    if athlete_id is None or athlete_id not in request.app[STANDIN_KEY].state.athletes:
        raise web.HTTPNotFound(text="no such sandbox athlete")
    note_athlete(athlete_id)
    return athlete_id


def _refused() -> web.Response:
    return web.Response(text=other_site_page(), status=403, content_type="text/html")


async def revoke(request: web.Request) -> web.Response:
    if sent_by_another_site(request):
        return _refused()
    request.app[STANDIN_KEY].revoke_athlete(_athlete(request))
    return web.Response(status=303, headers={"Location": "/"})


async def new_activity(request: web.Request) -> web.Response:
    if sent_by_another_site(request):
        return _refused()
    standin = request.app[STANDIN_KEY]
    await standin.create_activity_and_notify(_athlete(request))
    return web.Response(status=303, headers={"Location": "/"})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/", index)
    app.router.add_post("/sandbox/athletes/{athlete_id}/revoke", revoke)
    app.router.add_post("/sandbox/athletes/{athlete_id}/activities", new_activity)
