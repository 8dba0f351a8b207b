"""Walking the Connect flow the way a browser does: link page, Connect button, Strava, callback."""

from __future__ import annotations

from collections.abc import Iterable
from html.parser import HTMLParser
from typing import Any

import aiohttp
from yarl import URL

from standin.testing import authorize_form


def link_path(url: str) -> str:
    """The path+query of a Connect link, for a test client bound to a random port."""
    parsed = URL(url)
    return f"{parsed.path}?{parsed.query_string}"


# What a current browser sends when our own page posts its form.
SAME_ORIGIN = {"Sec-Fetch-Site": "same-origin"}


class _FormFields(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "input" and values.get("type") == "hidden" and values.get("name"):
            self.fields[values["name"] or ""] = values.get("value") or ""


def form_fields(html: str) -> dict[str, str]:
    """The hidden fields of the Connect page's form (the link token and the form token)."""
    parser = _FormFields()
    parser.feed(html)
    return parser.fields


async def press_connect(client: Any, link_url: str) -> str:
    """Open the link page, press "Connect with Strava" (posting what the page's form holds); returns
    Strava's authorize URL."""
    page = await client.get(link_path(link_url))
    assert page.status == 200, await page.text()
    fields = form_fields(await page.text())
    assert fields["t"] == URL(link_url).query["t"]
    response = await client.post("/connect/strava/authorize", data=fields, allow_redirects=False)
    assert response.status == 303, await response.text()
    return response.headers["Location"]


async def decide_at_strava(authorize_url: str, *, athlete_id: int | str = "new", granted: Iterable[str] | None = None,
                           decision: str = "approve") -> dict[str, str]:
    """Submit the stand-in's consent form; returns the callback query Strava redirects back with."""
    url = URL(authorize_url)
    form = authorize_form(dict(url.query), athlete_id=athlete_id, granted=granted, decision=decision)
    async with aiohttp.ClientSession() as http, http.post(
        str(url.with_query(None)), data=form, allow_redirects=False
    ) as response:
        assert response.status == 302, await response.text()
        return dict(URL(response.headers["Location"]).query)


async def connect(client: Any, link_url: str, **decision: Any) -> tuple[int, str]:
    """The whole flow; returns the callback page's status and HTML."""
    authorize_url = await press_connect(client, link_url)
    query = await decide_at_strava(authorize_url, **decision)
    response = await client.get("/oauth/strava/callback", params=query)
    return response.status, await response.text()
