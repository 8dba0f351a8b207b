"""The stand-in's control page and its JSON routes: every failure on demand (standin/controls.py).

They stand in for the athlete's own Strava screens (settings, recording a run) and for what happens at
Strava itself (capacity, budgets, outages, the push subscription). Loopback only.

Each control is a button on the page and a route. A route answers JSON when the request asks for it
(`Accept: application/json`, or a JSON body); otherwise it redirects back to the page (303), which
says what happened. Parameters come as JSON or form fields. Bad input: 400 (404 for an unknown
athlete or activity), `{"error", "message"}`, and nothing changes.

| route | parameters | does |
| --- | --- | --- |
| `GET /sandbox/status` | | athletes, grants, capacity, budgets, outage, subscription (JSON) |
| `POST /sandbox/athletes` | `firstname`, `lastname` (optional) | a new athlete with a distinct name |
| `POST /sandbox/capacity` | `capacity`: a number, or `none` | the app's athlete capacity |
| `POST /sandbox/rate-limit/exhaust` | `window`: `15min` or `daily` | uses the read budget up |
| `POST /sandbox/outage` | `minutes` (0 ends it), `kind`: `5xx` or `timeout` | Strava down for a while |
| `POST /sandbox/subscription/delete` | | the push subscription disappears |
| `POST /sandbox/athletes/{id}/revoke` | `event`: `true` or `false` (lost) | the athlete revokes access |
| `POST /sandbox/athletes/{id}/activities` | | a new activity, and its `create` event |
| `POST /sandbox/activities/{id}/update` | | the activity is renamed, and its `update` event |
| `POST /sandbox/activities/{id}/delete` | | the activity is deleted, and its `delete` event |
| `POST /sandbox/athletes/{id}/rotate-refresh-token` | | the app's refresh token stops working |
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from yarl import URL

from service.core.inputs import BadInput, parse_json
from standin import controls
from standin.calls import note_athlete
from standin.control_page import render_control_page
from standin.keys import STANDIN_KEY
from standin.requests import all_params, path_id, sent_by_another_site
from standin.standin import StravaStandin
from standin.templates import bad_form_page, other_site_page

Params = dict[str, Any]
Control = Callable[[StravaStandin, web.Request, Params], Awaitable[tuple[str, dict[str, Any]]]]


class Refused(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code = status, code


async def index(request: web.Request) -> web.Response:
    standin = request.app[STANDIN_KEY]
    html = render_control_page(standin, request.query.get("done", "")[:300])
    return web.Response(text=html, content_type="text/html",
                        headers={"Cache-Control": "no-store", "X-Frame-Options": "DENY"})


async def status(request: web.Request) -> web.Response:
    return web.json_response(controls.status(request.app[STANDIN_KEY]))


def _wants_json(request: web.Request) -> bool:
    return request.content_type == "application/json" or "application/json" in request.headers.get("Accept", "")


async def _params(request: web.Request) -> Params:
    if request.content_type == "application/json":
        try:
            body = parse_json(await request.read() or b"{}")
        except BadInput as exc:
            raise Refused(400, "bad_json", str(exc)) from None
        if not isinstance(body, dict):
            raise Refused(400, "bad_json", "the body must be a JSON object")
        return body
    return dict(await all_params(request))


def _athlete(request: web.Request, standin: StravaStandin) -> int:
    athlete_id = path_id(request.match_info["athlete_id"])
    if athlete_id is None or athlete_id not in standin.state.athletes:
        raise Refused(404, "no_such_athlete", "no such sandbox athlete")
    note_athlete(athlete_id)
    return athlete_id


def _activity(request: web.Request, standin: StravaStandin) -> int:
    activity_id = path_id(request.match_info["activity_id"])
    if activity_id is None or activity_id not in standin.state.activities:
        raise Refused(404, "no_such_activity", "no such sandbox activity")
    return activity_id


def _whole(params: Params, name: str, *, none_ok: bool = False) -> int | None:
    raw = params.get(name)
    if none_ok and (raw is None or str(raw).strip().lower() in ("", "none")):
        return None
    if isinstance(raw, bool) or not (isinstance(raw, int) or (isinstance(raw, str) and raw.strip().isdigit()
                                                              and raw.strip().isascii())):
        raise Refused(400, "bad_argument", f"{name} must be a whole number" + (" or none" if none_ok else ""))
    return int(raw)


def _flag(params: Params, name: str, default: bool) -> bool:
    raw = params.get(name, default)
    if isinstance(raw, bool):
        return raw
    if str(raw).lower() in ("true", "yes", "1", "on"):
        return True
    if str(raw).lower() in ("false", "no", "0", "off"):
        return False
    raise Refused(400, "bad_argument", f"{name} must be true or false")


def route(control: Control) -> Callable[[web.Request], Awaitable[web.Response]]:
    """One control as a route: same-site check, parameters, the control, then JSON or back to the page."""

    async def handler(request: web.Request) -> web.Response:
        wants_json = _wants_json(request)
        if sent_by_another_site(request):
            return web.Response(text=other_site_page(), status=403, content_type="text/html")
        standin = request.app[STANDIN_KEY]
        try:
            said, body = await control(standin, request, await _params(request))
        except (Refused, ValueError, LookupError) as exc:
            refused = exc if isinstance(exc, Refused) else Refused(
                404 if isinstance(exc, LookupError) else 400,
                "not_found" if isinstance(exc, LookupError) else "bad_argument", str(exc).strip("'\""))
            if wants_json:
                return web.json_response({"error": refused.code, "message": str(refused)}, status=refused.status)
            return web.Response(text=bad_form_page(str(refused)), status=refused.status, content_type="text/html")
        if wants_json:
            return web.json_response({"done": said, **body})
        return web.Response(status=303, headers={"Location": str(URL("/").with_query(done=said))})

    return handler


async def new_athlete(standin: StravaStandin, request: web.Request, p: Params) -> tuple[str, dict[str, Any]]:
    athlete_id = controls.create_athlete(standin, str(p.get("firstname") or ""), str(p.get("lastname") or ""))
    athlete = standin.state.athletes[athlete_id]
    return (f"Created {athlete.firstname} {athlete.lastname} (athlete {athlete_id}).",
            {"athlete_id": athlete_id, "firstname": athlete.firstname, "lastname": athlete.lastname})


async def capacity(standin: StravaStandin, request: web.Request, p: Params) -> tuple[str, dict[str, Any]]:
    value = _whole(p, "capacity", none_ok=True)
    controls.set_capacity(standin, value)
    return f"The app's athlete capacity is now {value if value is not None else 'unlimited'}.", {"capacity": value}


async def exhaust(standin: StravaStandin, request: web.Request, p: Params) -> tuple[str, dict[str, Any]]:
    window = str(p.get("window") or "")
    controls.exhaust_read_budget(standin, window)
    return f"The {window} read budget is used up: the next API call is answered 429.", {"window": window}


async def outage(standin: StravaStandin, request: web.Request, p: Params) -> tuple[str, dict[str, Any]]:
    minutes = _whole(p, "minutes") or 0
    kind = str(p.get("kind") or "5xx")
    started = controls.start_outage(standin, minutes, kind)  # type: ignore[arg-type]
    if started is None:
        return "Strava is back.", {"until": None}
    until = started.until.strftime("%Y-%m-%dT%H:%M:%SZ")
    what = "answers 503" if kind == "5xx" else "does not answer"
    return f"Strava {what} to every call until {until}.", {"until": until, "kind": kind}


async def delete_subscription(standin: StravaStandin, request: web.Request, p: Params) -> tuple[str, dict[str, Any]]:
    deleted = controls.delete_subscription(standin)
    return ("The push subscription is gone." if deleted else "There was no push subscription."), {"deleted": deleted}


async def revoke(standin: StravaStandin, request: web.Request, p: Params) -> tuple[str, dict[str, Any]]:
    athlete_id, send_event = _athlete(request, standin), _flag(p, "event", True)
    standin.revoke_athlete(athlete_id, send_event=send_event)
    event = "Strava pushes the deauthorization event" if send_event else "the deauthorization event is lost"
    return f"Athlete {athlete_id} revoked access; {event}.", {"athlete_id": athlete_id, "event": send_event}


async def new_activity(standin: StravaStandin, request: web.Request, p: Params) -> tuple[str, dict[str, Any]]:
    athlete_id = _athlete(request, standin)
    activity_id = await standin.create_activity_and_notify(athlete_id)
    return f"Athlete {athlete_id} recorded activity {activity_id}.", {"activity_id": activity_id}


def activity_change(aspect: str) -> Control:
    async def change(standin: StravaStandin, request: web.Request, p: Params) -> tuple[str, dict[str, Any]]:
        activity_id = _activity(request, standin)
        callback_status = await controls.activity_event(standin, activity_id, aspect)  # type: ignore[arg-type]
        pushed = "no push subscription, so no event" if callback_status is None else \
            f"the event pushed (FitGlue answered {callback_status or 'nothing'})"
        return f"Activity {activity_id}: {aspect}d, and {pushed}.", {"activity_id": activity_id,
                                                                     "callback_status": callback_status}

    return change


async def rotate(standin: StravaStandin, request: web.Request, p: Params) -> tuple[str, dict[str, Any]]:
    athlete_id = _athlete(request, standin)
    rotated = controls.rotate_refresh_token(standin, athlete_id)
    return f"Athlete {athlete_id}'s refresh token was rotated elsewhere: the app's copy no longer works.", \
        {"athlete_id": athlete_id, "rotated": rotated}


CONTROLS: dict[str, Control] = {
    "/sandbox/athletes": new_athlete,
    "/sandbox/capacity": capacity,
    "/sandbox/rate-limit/exhaust": exhaust,
    "/sandbox/outage": outage,
    "/sandbox/subscription/delete": delete_subscription,
    "/sandbox/athletes/{athlete_id}/revoke": revoke,
    "/sandbox/athletes/{athlete_id}/activities": new_activity,
    "/sandbox/activities/{activity_id}/update": activity_change("update"),
    "/sandbox/activities/{activity_id}/delete": activity_change("delete"),
    "/sandbox/athletes/{athlete_id}/rotate-refresh-token": rotate,
}


def add_routes(app: web.Application) -> None:
    app.router.add_get("/", index)
    app.router.add_get("/sandbox/status", status)
    for path, control in CONTROLS.items():
        app.router.add_post(path, route(control))
