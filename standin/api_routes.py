"""The REST endpoints a sync service uses, under ``/api/v3``, with Strava's scope rules."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web

from service.core.clock import from_epoch
from service.core.inputs import BadInput, parse_json
from standin.calls import note_athlete
from standin.faults import ATHLETE_TOKEN_INVALID, RECORD_NOT_FOUND, bad_request, scope_missing
from standin.keys import STANDIN_KEY
from standin.requests import all_params, bearer_token, path_id
from standin.state import AccessToken, Activity, Athlete

API = "/api/v3"
MAX_PER_PAGE = 200
READ_SCOPES = {"activity:read", "activity:read_all"}
BOOLEAN_FIELDS = ("trainer", "commute", "hide_from_home")
TEXT_FIELDS = ("name", "description", "sport_type", "gear_id")


def _iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _token(request: web.Request) -> AccessToken | None:
    standin = request.app[STANDIN_KEY]
    access = standin.state.live_access_token(bearer_token(request) or "", standin.clock.now())
    if access is not None:
        note_athlete(access.athlete_id)
    return access


def _unauthorized() -> web.Response:
    return web.json_response(ATHLETE_TOKEN_INVALID, status=401)


def athlete_json(athlete: Athlete, detailed: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": athlete.id,
        "username": athlete.username,
        "resource_state": 3 if detailed else 2,
        "firstname": athlete.firstname,
        "lastname": athlete.lastname,
        "city": "Sandbox",
        "state": "",
        "country": "Nowhere",
        "sex": None,
        "premium": False,
        "summit": False,
        "created_at": _iso(athlete.created_at),
        "updated_at": _iso(athlete.created_at),
        "profile_medium": "avatar/athlete/medium.png",
        "profile": "avatar/athlete/large.png",
    }
    if detailed:
        body.update(
            {"follower_count": 0, "friend_count": 0, "measurement_preference": "meters", "weight": None}
        )
    return body


def activity_json(activity: Activity, detailed: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "resource_state": 3 if detailed else 2,
        "athlete": {"id": activity.athlete_id, "resource_state": 1},
        "id": activity.id,
        "external_id": activity.external_id,
        "upload_id": None,
        "upload_id_str": None,
        "name": activity.name,
        "sport_type": activity.sport_type,
        "type": activity.sport_type,
        "start_date": _iso(activity.start_date),
        "start_date_local": _iso(activity.start_date),
        "timezone": "(GMT+00:00) Etc/UTC",
        "utc_offset": 0.0,
        "elapsed_time": activity.elapsed_time,
        "moving_time": activity.moving_time,
        "distance": activity.distance,
        "total_elevation_gain": activity.total_elevation_gain,
        "trainer": activity.trainer,
        "commute": activity.commute,
        "manual": False,
        "private": activity.private,
        "visibility": "only_me" if activity.private else "everyone",
        "hide_from_home": activity.hide_from_home,
        "gear_id": activity.gear_id,
    }
    if detailed:
        body.update({"description": activity.description, "device_name": "Sandbox Watch", "calories": 350.0})
    return body


def _visible(access: AccessToken, activity: Activity | None) -> Activity | None:
    """The activity when this token may see it (its athlete's, and Only You needs read_all)."""
    if activity is None or activity.athlete_id != access.athlete_id:
        return None
    if activity.private and "activity:read_all" not in access.scopes:
        return None
    return activity


async def get_athlete(request: web.Request) -> web.Response:
    access = _token(request)
    if access is None:
        return _unauthorized()
    athlete = request.app[STANDIN_KEY].state.athletes[access.athlete_id]
    return web.json_response(athlete_json(athlete, detailed="profile:read_all" in access.scopes))


def _int_param(request: web.Request, name: str, default: int | None) -> int | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(float(raw))  # Strava accepts "1.5"; inf and nan it refuses, as here
    except (ValueError, OverflowError) as exc:
        raise ValueError(name) from exc


async def list_activities(request: web.Request) -> web.Response:
    access = _token(request)
    if access is None:
        return _unauthorized()
    if not access.scopes & READ_SCOPES:
        return web.json_response(scope_missing("activity:read_permission"), status=401)
    try:
        after = _int_param(request, "after", None)
        before = _int_param(request, "before", None)
        page = _int_param(request, "page", 1) or 1
        per_page = _int_param(request, "per_page", 30) or 30
    except ValueError as exc:
        return web.json_response(bad_request("Activity", str(exc)), status=400)
    if page < 1 or per_page < 1:
        return web.json_response(bad_request("Activity", "page" if page < 1 else "per_page"), status=400)
    per_page = min(per_page, MAX_PER_PAGE)
    state = request.app[STANDIN_KEY].state
    found = [a for a in state.activities_of(access.athlete_id) if _visible(access, a)]
    if after is not None:
        found = [a for a in found if a.start_date > from_epoch(after)]
    if before is not None:
        found = [a for a in found if a.start_date < from_epoch(before)]
    found.sort(key=lambda a: (a.start_date, a.id), reverse=True)
    chunk = found[(page - 1) * per_page : page * per_page]
    return web.json_response([activity_json(a, detailed=False) for a in chunk])


def _activity_id(request: web.Request) -> int | None:
    return path_id(request.match_info["activity_id"])


async def get_activity(request: web.Request) -> web.Response:
    access = _token(request)
    if access is None:
        return _unauthorized()
    if not access.scopes & READ_SCOPES:
        return web.json_response(scope_missing("activity:read_permission"), status=401)
    state = request.app[STANDIN_KEY].state
    activity_id = _activity_id(request)
    activity = _visible(access, state.activities.get(activity_id) if activity_id is not None else None)
    if activity is None:
        return web.json_response(RECORD_NOT_FOUND, status=404)
    return web.json_response(activity_json(activity, detailed=True))


def _form_bool(value: str) -> bool:
    # Strava applied form values like "0" or "False" as true (stravalib#716); only "false" is false.
    return value != "false"


async def _updates(request: web.Request) -> dict[str, Any]:
    if request.content_type == "application/json":
        try:
            body = parse_json(await request.read() or b"{}")
        except BadInput:
            return {}
        return body if isinstance(body, dict) else {}
    params = await all_params(request)
    updates: dict[str, Any] = {k: params[k] for k in TEXT_FIELDS + ("type",) if k in params}
    updates.update({k: _form_bool(params[k]) for k in BOOLEAN_FIELDS if k in params})
    return updates


async def update_activity(request: web.Request) -> web.Response:
    access = _token(request)
    if access is None:
        return _unauthorized()
    if "activity:write" not in access.scopes:
        return web.json_response(scope_missing("activity:write_permission"), status=401)
    state = request.app[STANDIN_KEY].state
    activity_id = _activity_id(request)
    activity = _visible(access, state.activities.get(activity_id) if activity_id is not None else None)
    if activity is None:
        return web.json_response(RECORD_NOT_FOUND, status=404)
    updates = await _updates(request)
    if "sport_type" not in updates and isinstance(updates.get("type"), str):
        updates["sport_type"] = updates["type"]  # type is deprecated and ignored when sport_type is sent
    for name in ("name", "description", "sport_type"):
        if isinstance(updates.get(name), str):
            setattr(activity, name, updates[name])
    if "gear_id" in updates:
        activity.gear_id = None if updates["gear_id"] in (None, "none") else str(updates["gear_id"])
    for name in BOOLEAN_FIELDS:
        if isinstance(updates.get(name), bool):
            setattr(activity, name, updates[name])
    return web.json_response(activity_json(activity, detailed=True))


def add_routes(app: web.Application) -> None:
    app.router.add_get(f"{API}/athlete", get_athlete)
    app.router.add_get(f"{API}/athlete/activities", list_activities)
    app.router.add_get(f"{API}/activities/{{activity_id}}", get_activity)
    app.router.add_put(f"{API}/activities/{{activity_id}}", update_activity)
