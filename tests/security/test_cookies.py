"""The browser cookies (the OAuth browser secret, the landing page's form nonce): HttpOnly,
SameSite=Lax, and behind https Secure with the ``__Host-`` prefix, so that no other host can plant one."""

from __future__ import annotations

from yarl import URL

from service.app.factory import build_app
from service.desk.support_desk import SupportDesk
from tests.flows import SAME_ORIGIN, form_fields, link_path


async def set_cookie_header(aiohttp_client, runtime) -> str:
    client = await aiohttp_client(build_app(runtime, background=False))
    link = await SupportDesk(runtime).issue_connect_link("cookie@example.com", "test")
    response = await client.post("/connect/strava/authorize", data={"t": URL(link.url).query["t"]},
                                 headers=SAME_ORIGIN, allow_redirects=False)
    assert response.status == 303
    return response.headers["Set-Cookie"]


async def test_cookie_is_secure_behind_https(aiohttp_client, runtime):
    runtime.settings = runtime.settings.replaced(public_url="https://fitglue.example.com")
    cookie = await set_cookie_header(aiohttp_client, runtime)
    assert cookie.startswith("__Host-fitglue_oauth=") and "Domain" not in cookie
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    # it outlives the 10-minute state so that the browser can reload its result page, and it reaches
    # the authorize route too, so that one browser keeps one secret across attempts (tabs)
    assert "Path=/;" in cookie and f"Max-Age={runtime.settings.connect_result_ttl_s}" in cookie


async def test_cookie_is_not_secure_on_plain_http(aiohttp_client, runtime):
    cookie = await set_cookie_header(aiohttp_client, runtime)
    assert cookie.startswith("fitglue_oauth=")
    assert "Secure" not in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


async def test_the_form_cookie_behind_https_is_host_only_and_a_planted_one_is_ignored(aiohttp_client, runtime):
    runtime.settings = runtime.settings.replaced(public_url="https://fitglue.example.com")
    client = await aiohttp_client(build_app(runtime, background=False))
    link = await SupportDesk(runtime).issue_connect_link("cookie@example.com", "test")
    page = await client.get(link_path(link.url))
    cookie = page.headers["Set-Cookie"]
    assert cookie.startswith("__Host-fitglue_form=") and "Secure" in cookie and "Path=/;" in cookie
    nonce = cookie.split(";")[0].split("=", 1)[1]
    fields = form_fields(await page.text())
    client.session.cookie_jar.clear()  # send the cookies by hand: the test client speaks plain http

    async def press(cookie_header: str) -> int:
        response = await client.post("/connect/strava/authorize", data=fields, headers={"Cookie": cookie_header},
                                     allow_redirects=False)
        return response.status

    assert await press(f"fitglue_form={nonce}") == 403  # unprefixed: what a sibling host could set
    assert await press(f"__Host-fitglue_form={nonce}") == 303
