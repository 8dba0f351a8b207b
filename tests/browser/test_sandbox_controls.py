"""The stand-in's control page in a real browser, against a running sandbox: each failure switch,
followed by a diagnosis (admin API) with the finding it should cause (issue 14).

Screenshots are kept in test-artifacts/browser/controls-*.png.
"""

from __future__ import annotations

import pytest

from tests.browser.chromium import chromium_page, needs_chromium, save_screenshot

pytest.importorskip("playwright.async_api")
pytestmark = [pytest.mark.e2e, pytest.mark.slow, needs_chromium]


@pytest.fixture
async def page():
    async with chromium_page({"width": 1000, "height": 800}) as opened:
        yield opened


async def shot(page, name: str) -> None:
    await save_screenshot(page, f"controls-{name}")


async def connect(page, sandbox, email: str, *, untick: tuple[str, ...] = ()) -> int:
    """The Connect flow in the browser with the athlete the consent page preselects; the athlete id."""
    await page.goto(await sandbox.client.link(email))
    await page.click("text=Connect with Strava")
    await page.wait_for_selector("button:has-text('Authorize')")
    for scope in untick:
        await page.uncheck(f"input[name=scope_granted][value='{scope}']")
    await page.click("button:has-text('Authorize')")
    await page.wait_for_selector("h1")
    diagnosis = await sandbox.client.diagnosis(email)
    assert diagnosis["status"] == "connected", diagnosis
    return diagnosis["athlete_id"]


async def controls(page, sandbox) -> None:
    await page.goto(sandbox.client.controls + "/")


async def test_named_athletes_and_a_consent_page_that_preselects_nobody_connected(sandbox, page):
    await controls(page, sandbox)
    await page.click("#create-athlete")
    await page.click("#create-athlete")
    names = [a["firstname"] + " " + a["lastname"] for a in (await sandbox.client.status())["athletes"]]
    assert len(set(names)) == 2, names
    first = await connect(page, sandbox, "first@example.com")
    await page.goto(await sandbox.client.link("second@example.com"))
    await page.click("text=Connect with Strava")
    await page.wait_for_selector("button:has-text('Authorize')")
    checked = await page.get_attribute("input[name=athlete_id]:checked", "value")
    assert checked not in (str(first), None)  # never the athlete already connected
    await shot(page, "consent")
    await page.click("button:has-text('Authorize')")
    await page.wait_for_selector("h1")
    assert (await page.inner_text("h1")).strip() == "Connected"


async def test_capacity(sandbox, page):
    await connect(page, sandbox, "first@example.com")
    await controls(page, sandbox)
    await page.fill("input[name=capacity]", "1")
    await page.click("#set-capacity")
    await page.wait_for_selector("#done")
    assert (await page.inner_text("#capacity")).strip() == "1"
    await shot(page, "capacity")
    await sandbox.client.link("second@example.com")
    await sandbox.client.wait_for_finding("second@example.com", "app_capacity_reached")


async def test_read_budget_used_up(sandbox, page):
    athlete = await connect(page, sandbox, "runner@example.com")
    await controls(page, sandbox)
    await page.click("#exhaust-15min")
    await page.wait_for_selector("#done")
    await shot(page, "budget")
    await sandbox.client.control(f"/sandbox/athletes/{athlete}/activities")  # the worker must fetch it: 429
    await sandbox.client.wait_for_finding("runner@example.com", "rate_limited")


async def test_outage(sandbox, page):
    await connect(page, sandbox, "runner@example.com")
    await controls(page, sandbox)
    await page.fill("#outage input[name=minutes]", "5")
    await page.click("#start-outage")
    await page.wait_for_selector("text=Strava is down")
    await shot(page, "outage")
    await sandbox.client.admin_call("POST", "users/runner@example.com/refresh")
    await sandbox.client.wait_for_finding("runner@example.com", "token_refresh_failing")
    await page.click("#end-outage")
    await page.wait_for_selector("text=Strava is up")


async def test_push_subscription_deleted(sandbox, page):
    await connect(page, sandbox, "runner@example.com")
    await controls(page, sandbox)
    await page.click("#delete-subscription")
    await page.wait_for_selector("text=The push subscription is gone")
    await shot(page, "subscription")
    await sandbox.client.wait_for_finding("runner@example.com", "webhook_missing", timeout=90)


@pytest.mark.parametrize("event", [True, False])
async def test_revoke_with_and_without_the_event(sandbox, page, event):
    athlete = await connect(page, sandbox, "runner@example.com")
    await controls(page, sandbox)
    label = "Revoke access" if event else "Revoke access (event lost)"
    await page.click(f"#athlete-{athlete} button:text-is('{label}')")
    await page.wait_for_selector("#done")
    await shot(page, f"revoke-{'event' if event else 'lost'}")
    if event:
        await sandbox.client.wait_for_finding("runner@example.com", "revoked")
    else:
        await sandbox.client.admin_call("POST", "users/runner@example.com/refresh")  # how the app finds out
        await sandbox.client.wait_for_finding("runner@example.com", "needs_reauth")


async def test_activity_events_and_a_rotated_refresh_token(sandbox, page):
    athlete = await connect(page, sandbox, "runner@example.com")
    await controls(page, sandbox)
    await page.click(f"#athlete-{athlete} button:has-text('New activity')")
    await page.wait_for_selector("#done")
    await page.click(f"#athlete-{athlete} button:has-text('Edit')")
    await page.wait_for_selector("text=updated, and the event pushed")
    await page.click(f"#athlete-{athlete} button:has-text('Delete')")
    await page.wait_for_selector("text=deleted, and the event pushed")
    diagnosis = await sandbox.client.diagnosis("runner@example.com")
    assert diagnosis["facts"]["last_event_at"] is not None
    await page.click(f"#athlete-{athlete} button:has-text('Rotate refresh token')")
    await page.wait_for_selector("#done")
    await shot(page, "rotated")
    await sandbox.client.admin_call("POST", "users/runner@example.com/refresh")
    await sandbox.client.wait_for_finding("runner@example.com", "needs_reauth")
