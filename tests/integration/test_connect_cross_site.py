"""Issue 9, kind 7: Connect-flow safety against other sites and leaked URLs.

- The one browser-facing route that changes state, ``POST /connect/strava/authorize`` (the form of
  our landing page, the only form our pages post), accepts only requests from our own page:
  ``Sec-Fetch-Site``, ``Origin`` or the form token our page set.
- No page hands a link for an account to a browser that has not proven it holds it.
"""

from __future__ import annotations

import aiohttp
import pytest
from sqlalchemy import func, select
from yarl import URL

from service.app.factory import build_app
from service.db.models import OAuthAttempt
from service.desk.support_desk import SupportDesk
from tests.flows import decide_at_strava, form_fields, link_path, press_connect

ALICE = "alice@example.com"
OURS = "http://localhost:8080"  # the runtime fixture's FITGLUE_PUBLIC_URL


@pytest.fixture
async def client(aiohttp_client, runtime):
    return await aiohttp_client(build_app(runtime, background=False))


async def issue(runtime, email: str = ALICE) -> str:
    return (await SupportDesk(runtime).issue_connect_link(email, "test")).url


async def attempts(runtime) -> int:
    async with runtime.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(OAuthAttempt)) or 0)


async def post_authorize(client, data: dict[str, str], headers: dict[str, str] | None = None):
    return await client.post("/connect/strava/authorize", data=data, headers=headers or {}, allow_redirects=False)


async def test_cross_site_post_with_an_attackers_link_is_refused(client, runtime):
    """The issue's example: another site auto-submits a form carrying the attacker's own link."""
    attackers_token = URL(await issue(runtime, "attacker@example.com")).query["t"]
    response = await post_authorize(client, {"t": attackers_token}, {"Origin": "https://evil.example"})
    html = await response.text()
    assert response.status == 403 and "did not come from FitGlue" in html
    assert "Location" not in response.headers and "Set-Cookie" not in response.headers
    assert await attempts(runtime) == 0


@pytest.mark.parametrize("headers", [
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "cross-site", "Origin": OURS},  # the browser's own word wins
    {"Origin": "https://evil.example"},
    {"Origin": "http://localhost:8081"},  # another port is another origin
    {"Origin": "https://localhost:8080"},  # and another scheme
    {"Sec-Fetch-Site": "same-site"},  # a sibling host: not us
    {"Sec-Fetch-Site": "same-site", "Origin": "http://admin.localhost:8080"},
    {"Origin": "null"},  # hidden origin and no form token
    {},  # no sign at all, no form token
])
async def test_requests_not_shown_to_come_from_our_page_are_refused(client, runtime, headers):
    token = URL(await issue(runtime)).query["t"]
    response = await post_authorize(client, {"t": token}, headers)
    assert response.status == 403
    assert await attempts(runtime) == 0


@pytest.mark.parametrize("headers", [
    {"Sec-Fetch-Site": "same-origin"},
    {"Sec-Fetch-Site": "same-origin", "Origin": "null"},  # what our no-referrer page makes browsers send
    {"Sec-Fetch-Site": "none"},
    {"Origin": OURS},
    {"Origin": OURS.upper()},
])
async def test_same_origin_requests_are_accepted(client, runtime, headers):
    token = URL(await issue(runtime)).query["t"]
    response = await post_authorize(client, {"t": token}, headers)
    assert response.status == 303 and response.headers["Location"].startswith(runtime.settings.strava_oauth_url)
    assert await attempts(runtime) == 1


@pytest.mark.parametrize("headers", [{}, {"Origin": "null"}, {"Sec-Fetch-Site": "same-site"}])
async def test_the_form_token_of_our_page_is_enough_where_headers_do_not_tell(client, runtime, headers):
    """Old browsers, or an Origin hidden by the page's referrer policy: the page's form token decides."""
    url = await issue(runtime)
    fields = form_fields(await (await client.get(link_path(url))).text())
    response = await post_authorize(client, fields, headers)
    assert response.status == 303
    assert await attempts(runtime) == 1


async def test_a_form_token_does_not_outweigh_a_cross_site_signal(client, runtime):
    url = await issue(runtime)
    fields = form_fields(await (await client.get(link_path(url))).text())
    response = await post_authorize(client, fields, {"Origin": "https://evil.example"})
    assert response.status == 403


async def test_a_form_token_only_works_with_the_cookie_of_the_browser_it_was_made_for(client, runtime):
    """Copying our page's hidden fields into another site's form does not help without our cookie."""
    url = await issue(runtime)
    fields = form_fields(await (await client.get(link_path(url))).text())
    client.session.cookie_jar.clear()
    assert (await post_authorize(client, fields)).status == 403
    client.session.cookie_jar.update_cookies({"fitglue_form": "A" * 32})  # a cookie planted by someone else
    assert (await post_authorize(client, fields)).status == 403
    assert await attempts(runtime) == 0


async def test_the_landing_page_sets_its_form_cookie_http_only_and_lax(client, runtime):
    page = await client.get(link_path(await issue(runtime)))
    cookie = page.headers["Set-Cookie"]
    assert cookie.startswith("fitglue_form=") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Path=/;" in cookie


async def test_a_callback_in_a_browser_without_the_cookie_carries_no_link(client, runtime):
    """The issue's second example: a leaked callback URL used to render a freshly signed link."""
    url = await issue(runtime)
    query = await decide_at_strava(await press_connect(client, url))
    async with aiohttp.ClientSession() as stranger:
        response = await stranger.get(client.make_url("/oauth/strava/callback"), params=query)
        html = await response.text()
    assert response.status == 400 and "different browser" in html
    assert "/connect/strava?t=" not in html and URL(url).query["t"] not in html and ALICE not in html
    assert "Try again" not in html and "ask FitGlue support for a new one" in html
    # the real browser can still finish
    real = await client.get("/oauth/strava/callback", params=query)
    assert real.status == 200


async def test_a_callback_with_another_browsers_cookie_carries_no_link(client, runtime, aiohttp_client):
    url = await issue(runtime)
    query = await decide_at_strava(await press_connect(client, url))
    other = await aiohttp_client(build_app(runtime, background=False))
    await press_connect(other, await issue(runtime, "mallory@example.com"))  # it holds a cookie of its own
    response = await other.get("/oauth/strava/callback", params=query)
    html = await response.text()
    assert response.status == 400 and "/connect/strava?t=" not in html and ALICE not in html


async def test_the_retry_link_goes_only_to_the_browser_that_posted_it_and_is_that_link(client, runtime):
    url = await issue(runtime)
    query = await decide_at_strava(await press_connect(client, url), decision="deny")
    html = await (await client.get("/oauth/strava/callback", params=query)).text()
    assert f'href="{url}"' in html.replace("&amp;", "&")  # the very link this browser already held
