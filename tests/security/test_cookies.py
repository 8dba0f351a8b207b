"""The OAuth browser-binding cookie: HttpOnly, SameSite=Lax, Secure when the public URL is https."""

from __future__ import annotations

import dataclasses

from yarl import URL

from service.app import build_app
from service.support import SupportDesk
from tests.flows import SAME_ORIGIN


async def set_cookie_header(aiohttp_client, runtime) -> str:
    client = await aiohttp_client(build_app(runtime, background=False))
    link = await SupportDesk(runtime).issue_connect_link("cookie@example.com", "test")
    response = await client.post("/connect/strava/authorize", data={"t": URL(link.url).query["t"]},
                                 headers=SAME_ORIGIN, allow_redirects=False)
    assert response.status == 303
    return response.headers["Set-Cookie"]


async def test_cookie_is_secure_behind_https(aiohttp_client, runtime):
    runtime.settings = dataclasses.replace(runtime.settings, public_url="https://fitglue.example.com")
    cookie = await set_cookie_header(aiohttp_client, runtime)
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    # it outlives the 10-minute state so that the browser can reload its result page, and it reaches
    # the authorize route too, so that one browser keeps one secret across attempts (tabs)
    assert "Path=/;" in cookie and f"Max-Age={runtime.settings.connect_result_ttl_s}" in cookie


async def test_cookie_is_not_secure_on_plain_http(aiohttp_client, runtime):
    cookie = await set_cookie_header(aiohttp_client, runtime)
    assert "Secure" not in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
