"""A real browser (Debian's Chromium, driven by Playwright) through a Connect link:
landing page -> "Connect with Strava" -> the stand-in's consent page -> result page.

Screenshots of every page are kept in test-artifacts/browser/ (phone-sized viewport).
"""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestServer

from service.app.factory import build_app
from service.desk.support_desk import SupportDesk
from tests.browser.chromium import chromium_page, needs_chromium, save_screenshot

PHONE = {"width": 390, "height": 844}

playwright_api = pytest.importorskip("playwright.async_api")
pytestmark = needs_chromium


@pytest.fixture
async def served(runtime):
    """The real app on a real loopback port, its public URL pointing at itself."""
    server = TestServer(build_app(runtime, background=False), host="127.0.0.1")
    await server.start_server()
    runtime.settings = runtime.settings.replaced(public_url=str(server.make_url("")).rstrip("/"))
    yield runtime
    await server.close()


@pytest.fixture
async def page():
    async with chromium_page(PHONE) as opened:
        yield opened


async def shot(page, name: str) -> None:
    await save_screenshot(page, name)
    # readable on a phone: nothing wider than the viewport
    assert await page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


async def open_link(served, page, email: str) -> None:
    link = await SupportDesk(served).issue_connect_link(email, "browser-test")
    response = await page.goto(link.url)
    assert response.status == 200
    assert email in await page.inner_text("main")


async def test_connect_with_every_permission(served, page):
    await open_link(served, page, "phone@example.com")
    await shot(page, "1-landing")
    await page.click("text=Connect with Strava")
    await page.wait_for_selector("text=Authorize")
    await shot(page, "2-strava-consent")
    await page.click("button:has-text('Authorize')")
    await page.wait_for_selector("h1")
    assert (await page.inner_text("h1")).strip() == "Connected"
    await shot(page, "3-connected")


async def test_denied_at_strava(served, page):
    await open_link(served, page, "denier@example.com")
    await page.click("text=Connect with Strava")
    await page.click("button:has-text('Cancel')")
    await page.wait_for_selector("h1")
    assert "not connected" in (await page.inner_text("h1")).lower()
    assert await page.is_visible("text=Try again")
    await shot(page, "4-denied")


async def test_partial_grant_warns_and_offers_a_retry(served, page):
    await open_link(served, page, "partial@example.com")
    await page.click("text=Connect with Strava")
    await page.uncheck("input[name=scope_granted][value='activity:write']")
    await page.click("button:has-text('Authorize')")
    await page.wait_for_selector("h1")
    assert "limits" in (await page.inner_text("h1")).lower()
    assert await page.is_visible("text=Writing activities was not allowed")
    await shot(page, "5-partial")
    await page.click("text=Try again with all permissions")
    await page.wait_for_selector("text=Connect with Strava")
    # the landing page judges the grant as the result page did: not "already connected"
    assert await page.is_visible("text=Connected, with limits")
    assert "already connected" not in await page.inner_text("main")
    await shot(page, "5b-landing-after-partial")


# --- issue 9: reload and back, other sites, leaked callback URLs ------------------------------------


async def connect_in(page, served, email: str, *, untick: tuple[str, ...] = ()) -> None:
    await open_link(served, page, email)
    await page.click("text=Connect with Strava")
    for scope in untick:
        await page.uncheck(f"input[name=scope_granted][value='{scope}']")
    await page.click("button:has-text('Authorize')")
    await page.wait_for_selector("h1")


async def test_our_own_form_is_accepted_as_same_origin(served, page):
    """What a real browser sends when our landing page posts: Sec-Fetch-Site says same-origin, and
    Origin is our origin or "null" (the page's no-referrer policy hides it)."""
    posted = []
    page.on("request", lambda request: posted.append(request) if request.method == "POST" else None)
    await open_link(served, page, "headers@example.com")
    await page.click("text=Connect with Strava")
    await page.wait_for_selector("text=Authorize")
    headers = await posted[0].all_headers()
    assert posted[0].url.endswith("/connect/strava/authorize")
    assert headers["sec-fetch-site"] == "same-origin"
    assert headers.get("origin") in (served.settings.public_url, "null")


async def test_reload_and_back_after_connecting(served, page):
    await connect_in(page, served, "reload@example.com")
    assert (await page.inner_text("h1")).strip() == "Connected"
    await page.reload()
    assert (await page.inner_text("h1")).strip() == "Connected"
    assert "reload@example.com" in await page.inner_text("main")
    assert "different browser" not in await page.inner_text("main")
    await shot(page, "6-connected-reloaded")
    await page.go_back()  # Strava's consent page
    await page.go_back()  # our landing page, whose link is now used up
    await page.wait_for_selector("h1")
    assert (await page.inner_text("h1")).strip() == "This link was already used"
    assert "and it still is" in await page.inner_text("main")
    await shot(page, "7-back-to-used-link")


async def test_reload_after_a_partial_grant_keeps_the_warning(served, page):
    await connect_in(page, served, "partial-reload@example.com", untick=("profile:read_all",))
    assert (await page.inner_text("h1")).strip() == "Connected, with a warning"
    await page.reload()
    assert (await page.inner_text("h1")).strip() == "Connected, with a warning"
    assert await page.is_visible("text=Reading your profile was not allowed")
    assert await page.is_visible("text=Try again with all permissions")
    await shot(page, "8-profile-missing-reloaded")


async def test_reload_after_a_disconnect_says_it_is_no_longer_connected(served, page):
    """Review finding: the reloaded page still said "Strava is now connected" after a disconnect."""
    await connect_in(page, served, "gone@example.com", untick=("profile:read_all",))
    assert await page.is_visible("text=Syncing itself still works.")
    await SupportDesk(served).disconnect("gone@example.com", "browser-test")
    await page.reload()
    assert (await page.inner_text("h1")).strip() == "Strava is no longer connected"
    main = await page.inner_text("main")
    assert "Strava is now connected" not in main and "Not connected" in main
    await shot(page, "8b-reloaded-after-disconnect")


async def test_a_read_only_grant_is_not_told_syncing_works(served, page):
    await connect_in(page, served, "readonly@example.com",
                     untick=("activity:read_all", "activity:write", "profile:read_all"))
    assert (await page.inner_text("h1")).strip() == "Connected, with limits"
    main = await page.inner_text("main")
    assert "still works" not in main
    assert "Syncing does not work until activity:read_all and activity:write are granted." in main
    await shot(page, "5c-read-only")


@pytest.fixture
async def other_site():
    """A page on another site (localhost is not 127.0.0.1) that auto-submits a form to us."""
    from aiohttp import web

    forms: dict[str, str] = {}

    async def evil(request: web.Request) -> web.Response:
        return web.Response(content_type="text/html", text=forms["html"])

    app = web.Application()
    app.router.add_get("/", evil)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield forms, f"http://localhost:{server.port}/"
    await server.close()


async def test_another_site_cannot_start_a_connect(served, page, other_site):
    from yarl import URL

    link = await SupportDesk(served).issue_connect_link("attacker@example.com", "browser-test")
    forms, evil_url = other_site
    forms["html"] = (f'<form method="post" action="{served.settings.public_url}/connect/strava/authorize">'
                     f'<input type="hidden" name="t" value="{URL(link.url).query["t"]}"></form>'
                     "<script>document.forms[0].submit()</script>")
    await page.goto(evil_url)
    await page.wait_for_selector("h1")
    assert (await page.inner_text("h1")).strip() == "This did not come from FitGlue's page"
    assert page.url.startswith(served.settings.public_url)  # no redirect to Strava
    await shot(page, "9-cross-site-refused")


async def test_a_leaked_callback_url_shows_nothing_in_another_browser(served, page):
    await connect_in(page, served, "leaked@example.com")
    callback_url = page.url
    context = await page.context.browser.new_context(viewport=PHONE, device_scale_factor=1)
    stranger = await context.new_page()
    await stranger.goto(callback_url)
    assert (await stranger.inner_text("h1")).strip() == "This sign-in has already finished"
    main = await stranger.inner_text("main")
    assert "leaked@example.com" not in main and await stranger.locator("a.button").count() == 0
    await shot(stranger, "10-leaked-callback")
    await context.close()
