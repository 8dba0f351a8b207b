"""A real browser (Debian's Chromium, driven by Playwright) through a Connect link:
landing page -> "Connect with Strava" -> the stand-in's consent page -> result page.

Screenshots of every page are kept in test-artifacts/browser/ (phone-sized viewport).
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer

from service.app import build_app
from service.support import SupportDesk

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"
PHONE = {"width": 390, "height": 844}

playwright_api = pytest.importorskip("playwright.async_api")
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")


@pytest.fixture
async def served(runtime):
    """The real app on a real loopback port, its public URL pointing at itself."""
    server = TestServer(build_app(runtime, background=False), host="127.0.0.1")
    await server.start_server()
    runtime.settings = dataclasses.replace(runtime.settings, public_url=str(server.make_url("")).rstrip("/"))
    yield runtime
    await server.close()


@pytest.fixture
async def page():
    async with playwright_api.async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        context = await browser.new_context(viewport=PHONE, device_scale_factor=1)
        yield await context.new_page()
        await browser.close()


async def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
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
