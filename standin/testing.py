"""Helpers for tests that drive the stand-in over HTTP (its own tests and end-to-end ones)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from yarl import URL


def authorize_form(
    authorize_params: Mapping[str, str],
    *,
    athlete_id: int | str = "new",
    granted: Iterable[str] | None = None,
    decision: str = "approve",
) -> list[tuple[str, str]]:
    """The fields the consent page POSTs, for the query of an authorize URL.

    ``granted`` None ticks every requested scope, as the page does by default.
    """
    scope = authorize_params.get("scope", "")
    ticks = list(granted) if granted is not None else [s for s in scope.split(",") if s]
    fields = [
        ("client_id", authorize_params.get("client_id", "")),
        ("redirect_uri", authorize_params.get("redirect_uri", "")),
        ("state", authorize_params.get("state", "")),
        ("scope", scope),
        ("athlete_id", str(athlete_id)),
        ("decision", decision),
    ]
    fields.extend(("scope_granted", s) for s in ticks)
    return fields


async def connect_athlete(
    http: Any,
    *,
    base: str = "",
    client_id: str = "1001",
    client_secret: str = "sandbox-secret",
    scope: str = "read,activity:read_all,activity:write,profile:read_all",
    athlete_id: int | str = "new",
    granted: Iterable[str] | None = None,
    redirect_uri: str = "http://localhost:8080/oauth/strava/callback",
) -> dict[str, Any]:
    """Authorize and exchange the code; the token response plus ``"scope"`` (the granted scopes the
    redirect carried). ``http`` is an aiohttp ClientSession (give ``base``) or a pytest-aiohttp
    TestClient (leave ``base`` empty)."""
    params = {"client_id": client_id, "redirect_uri": redirect_uri, "scope": scope, "state": "s"}
    form = authorize_form(params, athlete_id=athlete_id, granted=granted)
    async with http.post(f"{base}/oauth/authorize", data=form, allow_redirects=False) as resp:
        if resp.status != 302:
            raise AssertionError(f"authorize answered {resp.status}: {await resp.text()}")
        query = URL(resp.headers["Location"]).query
    data = {
        "client_id": client_id,
        "client_secret": client_secret,
        "code": query["code"],
        "grant_type": "authorization_code",
    }
    async with http.post(f"{base}/oauth/token", data=data) as resp:
        if resp.status != 200:
            raise AssertionError(f"token exchange answered {resp.status}: {await resp.text()}")
        body: dict[str, Any] = await resp.json()
    body["scope"] = query["scope"]
    return body
