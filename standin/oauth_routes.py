"""``/oauth/authorize`` (consent page and form), ``/oauth/token`` and ``/oauth/deauthorize``."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from multidict import MultiMapping
from yarl import URL

from service.core.clock import to_epoch
from standin.calls import note_athlete
from standin.config import KNOWN_SCOPES
from standin.controls import create_athlete, next_default_name
from standin.faults import (
    ATHLETE_TOKEN_INVALID,
    CLIENT_ID_INVALID,
    CODE_INVALID,
    REFRESH_TOKEN_INVALID,
    SCOPE_INVALID,
    bad_request,
)
from standin.keys import STANDIN_KEY
from standin.requests import all_params, bearer_token, path_id, sent_by_another_site
from standin.standin import StravaStandin
from standin.state import AccessToken, Athlete, RefreshToken
from standin.templates import authorize_page, bad_form_page, capacity_page, other_site_page

OAUTH_PREFIXES = ("/oauth", "/api/v3/oauth")


def _requested_scopes(raw: str | None) -> list[str] | None:
    """The requested scopes in request order, or None when any is unknown or none is given."""
    scopes = [s.strip() for s in (raw or "").split(",") if s.strip()]
    if not scopes or any(s not in KNOWN_SCOPES for s in scopes):
        return None
    return list(dict.fromkeys(scopes))


def _valid_redirect(uri: str | None) -> bool:
    if not uri:
        return False
    try:
        url = URL(uri)
    except ValueError:
        return False
    return url.scheme in ("http", "https") and bool(url.host)


def _check_authorize(standin: StravaStandin, params: MultiMapping[str]) -> web.Response | list[str]:
    """The Strava error response for a bad authorize request, else the requested scopes."""
    if params.get("client_id") != standin.config.client_id:
        return web.json_response(CLIENT_ID_INVALID, status=400)
    if not _valid_redirect(params.get("redirect_uri")):
        return web.json_response(bad_request("Application", "redirect_uri"), status=400)
    scopes = _requested_scopes(params.get("scope"))
    if scopes is None:
        return web.json_response(SCOPE_INVALID, status=400)
    return scopes


async def authorize_get(request: web.Request) -> web.Response:
    standin = request.app[STANDIN_KEY]
    params = request.query
    checked = _check_authorize(standin, params)
    if isinstance(checked, web.Response):
        return checked
    if params.get("response_type") != "code":
        return web.json_response(bad_request("Authorize", "response_type"), status=400)
    html = authorize_page(
        action=request.path,
        client_id=standin.config.client_id,
        redirect_uri=params["redirect_uri"],
        state=params.get("state", ""),
        scope=params["scope"],
        requested=checked,
        athletes=standin.state.athletes.values(),
        connected=set(standin.state.grants),
        new_name=next_default_name(standin),
    )
    return web.Response(text=html, content_type="text/html")


def _redirect(redirect_uri: str, query: dict[str, str]) -> web.Response:
    location = URL(redirect_uri).update_query(query)
    return web.Response(status=302, headers={"Location": str(location), "Cache-Control": "no-store"})


def _html(text: str, status: int) -> web.Response:
    return web.Response(text=text, status=status, content_type="text/html")


async def authorize_post(request: web.Request) -> web.Response:
    standin = request.app[STANDIN_KEY]
    if sent_by_another_site(request):
        return _html(other_site_page(), 403)
    params = await all_params(request)
    checked = _check_authorize(standin, params)
    if isinstance(checked, web.Response):
        return checked
    decision = params.get("decision")
    if decision not in ("approve", "deny"):
        return _html(bad_form_page("decision must be approve or deny"), 400)
    chosen = params.get("athlete_id", "")
    athlete: Athlete | None = None
    if chosen != "new":
        chosen_id = path_id(chosen)
        athlete = standin.state.athletes.get(chosen_id) if chosen_id is not None else None
        if athlete is None:
            return _html(bad_form_page("athlete_id must be a sandbox athlete's id or new"), 400)
        note_athlete(athlete.id)
    capacity = standin.config.athlete_capacity
    already = athlete is not None and standin.state.is_connected(athlete.id)
    if capacity is not None and not already and standin.state.connected_count() >= capacity:
        return _html(capacity_page(standin.config.client_id, capacity), 403)
    state = params.get("state", "")
    redirect_uri = params["redirect_uri"]
    if decision == "deny":
        return _redirect(redirect_uri, {"state": state, "error": "access_denied"})
    if athlete is None:
        athlete = standin.state.athletes[
            create_athlete(standin, params.get("firstname") or "", params.get("lastname") or "")]
        note_athlete(athlete.id)
    granted = {"read"} | (set(params.getall("scope_granted", [])) & set(checked))
    code = standin.state.approve(athlete.id, granted, standin.clock.now())
    return _redirect(redirect_uri, {"state": state, "code": code.code, "scope": ",".join(code.scopes)})


def _athlete_summary(athlete: Athlete) -> dict[str, Any]:
    return {
        "id": athlete.id,
        "username": athlete.username,
        "resource_state": 2,
        "firstname": athlete.firstname,
        "lastname": athlete.lastname,
    }


def _token_body(standin: StravaStandin, access: AccessToken, refresh: RefreshToken) -> dict[str, Any]:
    return {
        "token_type": "Bearer",
        "expires_at": to_epoch(access.expires_at),
        "expires_in": access.seconds_left(standin.clock.now()),
        "refresh_token": refresh.token,
        "access_token": access.token,
    }


async def token(request: web.Request) -> web.Response:
    standin = request.app[STANDIN_KEY]
    params = await all_params(request)
    refused = standin.check_client(params.get("client_id"), params.get("client_secret"))
    if refused is not None:
        return web.json_response(refused[1], status=refused[0])
    now = standin.clock.now()
    grant_type = params.get("grant_type")
    if grant_type == "authorization_code":
        issued = standin.state.redeem_code(params.get("code", ""), now)
        if issued is None:
            return web.json_response(CODE_INVALID, status=400)
        access, refresh = issued
        note_athlete(access.athlete_id)
        body = _token_body(standin, access, refresh)
        body["athlete"] = _athlete_summary(standin.state.athletes[access.athlete_id])
        return web.json_response(body)
    if grant_type == "refresh_token":
        sent = params.get("refresh_token", "")
        known = standin.state.refresh_tokens.get(sent)
        if known is not None:
            note_athlete(known.athlete_id)
        issued = standin.state.refresh(sent, now)
        if issued is None:
            return web.json_response(REFRESH_TOKEN_INVALID, status=400)
        return web.json_response(_token_body(standin, *issued))
    return web.json_response(bad_request("Application", "grant_type"), status=400)


async def deauthorize(request: web.Request) -> web.Response:
    """App-initiated: revokes every token of the athlete. Sends no webhook event."""
    standin = request.app[STANDIN_KEY]
    params = await all_params(request)
    sent = bearer_token(request, params)
    access = standin.state.live_access_token(sent or "", standin.clock.now())
    if sent is None or access is None:
        return web.json_response(ATHLETE_TOKEN_INVALID, status=401)
    note_athlete(access.athlete_id)
    standin.state.revoke(access.athlete_id)
    return web.json_response({"access_token": sent})


def add_routes(app: web.Application) -> None:
    for prefix in OAUTH_PREFIXES:
        app.router.add_get(f"{prefix}/authorize", authorize_get)
        app.router.add_post(f"{prefix}/authorize", authorize_post)
        app.router.add_post(f"{prefix}/token", token)
        app.router.add_post(f"{prefix}/deauthorize", deauthorize)
