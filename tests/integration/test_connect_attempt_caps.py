"""Issue 9, kind 12 (the caps): one link, or one user, cannot add OAuth attempts without bound.

Each press of "Connect with Strava" stores an attempt. Over FITGLUE_CONNECT_ATTEMPTS_PER_LINK (or
_PER_USER) within FITGLUE_CONNECT_ATTEMPT_WINDOW_S the answer is 429 with Retry-After and a page
saying when to try again, and nothing is stored.
"""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select
from yarl import URL

from service.app.factory import build_app
from service.db.models import OAuthAttempt
from service.desk.support_desk import SupportDesk
from tests.flows import SAME_ORIGIN, decide_at_strava, press_connect


@pytest.fixture
async def client(aiohttp_client, runtime):
    return await aiohttp_client(build_app(runtime, background=False))


async def issue(runtime, email: str = "alice@example.com") -> str:
    return (await SupportDesk(runtime).issue_connect_link(email, "test")).url


async def attempts(runtime) -> int:
    async with runtime.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(OAuthAttempt)) or 0)


async def press(client, url: str):
    return await client.post("/connect/strava/authorize", data={"t": URL(url).query["t"]}, headers=SAME_ORIGIN,
                             allow_redirects=False)


async def test_one_link_pressed_many_times_stops_at_the_cap(client, runtime, clock):
    """The issue's example, scaled down: 2,000 presses with one link made 2,000 rows."""
    settings = runtime.settings
    assert (settings.connect_attempts_per_link, settings.connect_attempt_window_s) == (10, 3600)  # the defaults
    url = await issue(runtime)
    statuses = []
    for _ in range(25):
        statuses.append((await press(client, url)).status)
        clock.advance(1)
    assert statuses == [303] * 10 + [429] * 15
    assert await attempts(runtime) == 10

    refused = await press(client, url)
    html = await refused.text()
    assert refused.status == 429 and "Too many tries" in html and "with this link" in html
    # the first attempt leaves the hour-long window 3600 s after it started; 25 s have passed
    assert int(refused.headers["Retry-After"]) == 3600 - 25
    assert "Set-Cookie" not in refused.headers and "Location" not in refused.headers

    clock.advance(int(refused.headers["Retry-After"]) - 1)
    assert (await press(client, url)).status == 429  # one second early
    clock.advance(1)
    assert (await press(client, url)).status == 303
    assert await attempts(runtime) == 11


async def test_the_per_user_cap_covers_all_of_their_links(client, runtime, clock):
    runtime.settings = runtime.settings.replaced(connect_attempts_per_link=3, connect_attempts_per_user=5,
                                           connect_attempt_window_s=600)
    first, second, third = [await issue(runtime) for _ in range(3)]
    for _ in range(3):
        assert (await press(client, first)).status == 303
    assert (await press(client, first)).status == 429
    assert (await press(client, second)).status == 303
    clock.advance(60)
    assert (await press(client, second)).status == 303
    refused = await press(client, third)
    assert refused.status == 429 and "for this FitGlue account" in await refused.text()
    assert int(refused.headers["Retry-After"]) == 600 - 60
    assert (await press(client, await issue(runtime, "bob@example.com"))).status == 303  # others are not affected
    assert await attempts(runtime) == 6


async def test_finished_attempts_count_too_and_a_connect_still_works_under_the_cap(client, runtime):
    runtime.settings = runtime.settings.replaced(connect_attempts_per_link=2)
    url = await issue(runtime)
    denied = await decide_at_strava(await press_connect(client, url), decision="deny")
    assert (await client.get("/oauth/strava/callback", params=denied)).status == 403
    approved = await decide_at_strava(await press_connect(client, url))
    assert (await client.get("/oauth/strava/callback", params=approved)).status == 200
    assert (await press(client, url)).status == 410  # used up by the complete connect: the link answers first


async def test_presses_arriving_together_do_not_slip_past_the_cap(client, runtime):
    """Counting and adding happen one request at a time per user (a row lock on PostgreSQL)."""
    url = await issue(runtime)
    statuses = [r.status for r in await asyncio.gather(*(press(client, url) for _ in range(30)))]
    assert sorted(statuses) == [303] * 10 + [429] * 20
    assert await attempts(runtime) == 10
