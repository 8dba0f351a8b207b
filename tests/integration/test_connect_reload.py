"""Issue 9, kind 3: result pages survive reload and the back button.

A phone restoring a tab, a reload or the back button fetches the callback URL again. The browser
that started the sign-in sees the same outcome again (nothing is exchanged twice, no hook runs
twice); any other browser is told the sign-in already finished, and learns nothing else.
"""

from __future__ import annotations

import asyncio
import re
from html import unescape

import aiohttp
import pytest
from sqlalchemy import select, update

from service.app.factory import build_app
from service.db.models import OAuthAttempt, StravaConnection
from service.desk.support_desk import SupportDesk
from tests.flows import decide_at_strava, link_path, press_connect
from troubleshooting.vocabulary import AttemptOutcome, ConnectionStatus

ALICE = "alice@example.com"
WITHOUT_WRITE = ["read", "activity:read_all", "profile:read_all"]


@pytest.fixture
async def client(aiohttp_client, runtime):
    return await aiohttp_client(build_app(runtime, background=False))


async def issue(runtime, email: str = ALICE) -> str:
    return (await SupportDesk(runtime).issue_connect_link(email, "test")).url


def title(html: str) -> str:
    return unescape(re.search(r"<h1>(.*?)</h1>", html, re.S).group(1).strip())


async def callback(client, query: dict[str, str]) -> tuple[int, str]:
    response = await client.get("/oauth/strava/callback", params=query)
    return response.status, await response.text()


async def to_strava_and_back(client, runtime, **decision) -> dict[str, str]:
    return await decide_at_strava(await press_connect(client, await issue(runtime)), **decision)


def break_next_exchange(standin) -> None:
    standin.fail_next("/oauth/token", 400, {"message": "Bad Request", "errors": [
        {"resource": "AuthorizationCode", "field": "code", "code": "invalid"}]})


async def test_reloading_a_successful_callback_shows_connected_again(client, runtime, standin):
    """The issue's example: today the reload says "the sign-in started in a different browser"."""
    query = await to_strava_and_back(client, runtime)
    first = await callback(client, query)
    assert first[0] == 200 and title(first[1]) == "Connected"
    exchanges = standin.count_calls("POST", "/oauth/token")

    status, html = await callback(client, query)
    assert status == 200 and title(html) == "Connected" and ALICE in html
    assert "different browser" not in html and "already finished" in html
    assert standin.count_calls("POST", "/oauth/token") == exchanges  # nothing was exchanged again
    diagnosis = await SupportDesk(runtime).diagnose(ALICE)  # agrees with the page
    assert diagnosis.status == ConnectionStatus.CONNECTED
    assert not {"authorization_failed", "missing_permissions"} & set(diagnosis.ids)


@pytest.mark.parametrize("case", ["partial", "denied", "failed_exchange", "expired", "athlete_conflict"])
async def test_reloading_any_result_shows_the_same_outcome(client, runtime, standin, clock, case):
    decision: dict = {}
    if case == "partial":
        decision = {"granted": WITHOUT_WRITE}
    elif case == "denied":
        decision = {"decision": "deny"}
    elif case == "athlete_conflict":
        taken = await to_strava_and_back(client, runtime)  # someone else already holds this athlete
        assert (await callback(client, taken))[0] == 200
        async with runtime.sessions() as session:
            decision = {"athlete_id": (await session.execute(select(StravaConnection.athlete_id))).scalar_one()}
        runtime_link = await issue(runtime, "bob@example.com")
        query = await decide_at_strava(await press_connect(client, runtime_link), **decision)
    if case != "athlete_conflict":
        query = await to_strava_and_back(client, runtime, **decision)
    if case == "failed_exchange":
        break_next_exchange(standin)
    if case == "expired":
        clock.advance(11 * 60)

    first_status, first_html = await callback(client, query)
    again_status, again_html = await callback(client, query)
    assert (again_status, title(again_html)) == (first_status, title(first_html))
    assert "different browser" not in again_html
    expected = {"partial": (200, "Writing activities was not allowed"),
                "denied": (403, "You chose not to give FitGlue access"),
                "failed_exchange": (400, "FitGlue could not finish connecting"),
                "expired": (400, "longer than 10 minutes"),
                "athlete_conflict": (409, "already connected to another FitGlue account")}[case]
    assert again_status == expected[0] and expected[1] in again_html
    if case in ("partial", "denied", "failed_exchange", "expired"):
        assert "Try again" in again_html  # the link still works for this browser


async def test_reload_after_the_link_was_used_elsewhere_drops_the_retry(client, runtime):
    """A partial grant reloaded after a complete connect used the link up: no dead Try again button,
    and the page says the newer grant is the one that counts now."""
    url = await issue(runtime)
    partial = await decide_at_strava(await press_connect(client, url), granted=WITHOUT_WRITE)
    assert (await callback(client, partial))[0] == 200
    async with runtime.sessions() as session:
        athlete = (await session.execute(select(StravaConnection.athlete_id))).scalar_one()
    full = await decide_at_strava(await press_connect(client, url), athlete_id=athlete)
    assert title((await callback(client, full))[1]) == "Connected"

    status, html = await callback(client, partial)
    assert status == 200 and "Try again" not in html and title(html) == "Strava was connected again since"
    assert "This sign-in connected Strava" in html and "without activity:write" in html
    assert "nothing more to do" in html


async def test_reload_never_runs_the_connect_hooks_again(client, runtime):
    calls: list[int | None] = []

    async def record(athlete_id: int | None) -> None:
        calls.append(athlete_id)

    runtime.on_connected.append(record)
    query = await to_strava_and_back(client, runtime)
    await callback(client, query)
    await callback(client, query)
    await callback(client, query)
    for _ in range(3):  # the hooks run in the background
        await asyncio.sleep(0)
    assert len(calls) == 1


async def test_a_callback_claimed_but_not_settled_says_so(client, runtime):
    """A reload while the first callback is still exchanging the code (or died doing so)."""
    query = await to_strava_and_back(client, runtime)
    async with runtime.sessions() as session, session.begin():
        await session.execute(update(OAuthAttempt).values(finished_at=runtime.clock.now()))
    status, html = await callback(client, query)
    assert status == 409 and title(html) == "Still finishing" and "Reload this page in a minute" in html


async def test_another_browser_reloading_a_finished_callback_learns_nothing(client, runtime):
    query = await to_strava_and_back(client, runtime)
    assert (await callback(client, query))[0] == 200
    async with aiohttp.ClientSession() as stranger:  # a leaked callback URL in someone else's browser
        response = await stranger.get(client.make_url("/oauth/strava/callback"), params=query)
        status, html = response.status, await response.text()
    assert status == 410 and title(html) == "This sign-in has already finished"
    assert ALICE not in html and "/connect/strava?t=" not in html and "different browser" not in html


async def test_two_tabs_in_one_browser_can_both_finish(client, runtime):
    """The browser keeps one secret for all its attempts, so an older tab is still this browser."""
    url = await issue(runtime)
    first_tab = await decide_at_strava(await press_connect(client, url), decision="deny")
    second_tab = await decide_at_strava(await press_connect(client, url))
    assert (await callback(client, second_tab))[0] == 200
    status, html = await callback(client, first_tab)
    assert status == 403 and "different browser" not in html
    async with runtime.sessions() as session:
        outcomes = sorted((await session.execute(select(OAuthAttempt.outcome))).scalars())
    assert outcomes == [AttemptOutcome.CONNECTED, AttemptOutcome.DENIED]


async def test_going_back_to_a_used_link_says_how_strava_is_now(client, runtime):
    url = await issue(runtime)
    query = await decide_at_strava(await press_connect(client, url))
    assert (await callback(client, query))[0] == 200
    back = await client.get(link_path(url))
    html = await back.text()
    assert back.status == 410 and "already used" in html and "and it still is" in html

    async with runtime.sessions() as session, session.begin():
        await session.execute(update(StravaConnection).values(status=ConnectionStatus.NEEDS_REAUTH))
    later = await (await client.get(link_path(url))).text()
    assert "and it still is" not in later and "needs re-authorization" in later and "new Connect link" in later


# --- a reload after the connection changed (review after the merge) --------------------------------

COMPLETE = ["read", "activity:read_all", "activity:write", "profile:read_all"]
WITHOUT_PROFILE = ["read", "activity:read_all", "activity:write"]
CONNECTED_TITLES = {"Connected", "Connected, with a warning", "Connected, with limits"}


async def change_connection(client, runtime, change: str, first_grant: list[str]) -> None:
    """What may happen to a connection after its result page was shown."""
    if change == "disconnected":
        await SupportDesk(runtime).disconnect(ALICE, "test")
    elif change in (ConnectionStatus.NEEDS_REAUTH, ConnectionStatus.REVOKED):
        async with runtime.sessions() as session, session.begin():
            await session.execute(update(StravaConnection).values(status=change))
    else:  # connected again, from a fresh link, with another grant
        async with runtime.sessions() as session:
            athlete = (await session.execute(select(StravaConnection.athlete_id))).scalar_one()
        other = WITHOUT_WRITE if first_grant != WITHOUT_WRITE else COMPLETE
        query = await decide_at_strava(await press_connect(client, await issue(runtime)), athlete_id=athlete,
                                       granted=other)
        assert (await callback(client, query))[0] == 200


@pytest.mark.parametrize("grant", [COMPLETE, WITHOUT_PROFILE, WITHOUT_WRITE], ids=["complete", "warning", "error"])
@pytest.mark.parametrize(("change", "says"), [
    ("disconnected", "Strava is no longer connected"),
    (ConnectionStatus.NEEDS_REAUTH, "Strava needs re-authorization"),
    (ConnectionStatus.REVOKED, "FitGlue's access to Strava was revoked"),
    ("reconnected", "Strava was connected again since"),
])
async def test_reloading_a_connected_result_after_the_connection_changed_says_so(client, runtime, grant, change, says):
    """Review finding: after a disconnect the reloaded page still said "Strava is now connected …
    Connected, with a warning" while the status was not_connected."""
    query = await decide_at_strava(await press_connect(client, await issue(runtime)), granted=grant)
    first_status, first_html = await callback(client, query)
    assert first_status == 200 and title(first_html) in CONNECTED_TITLES
    await change_connection(client, runtime, change, grant)

    status, html = await callback(client, query)
    assert status == 200 and title(html) == says
    assert "Strava is now connected" not in html and "different browser" not in html
    assert "This sign-in connected Strava" in html  # what that sign-in did, then how it stands now
    diagnosis = await SupportDesk(runtime).diagnose(ALICE)
    if change == "reconnected":
        assert diagnosis.status == ConnectionStatus.CONNECTED
    else:
        assert diagnosis.status == {"disconnected": ConnectionStatus.NOT_CONNECTED}.get(change, change)
        assert "Connected" not in html.replace("This sign-in connected", "")


async def test_reloading_a_refusal_after_connecting_in_another_tab_says_it_is_connected_now(client, runtime):
    """The refused sign-in changed nothing, but Strava is connected now: no "try again" that would
    suggest otherwise."""
    url = await issue(runtime)
    refused = await decide_at_strava(await press_connect(client, url), decision="deny")
    assert (await callback(client, refused))[0] == 403
    full = await decide_at_strava(await press_connect(client, url))
    assert (await callback(client, full))[0] == 200

    status, html = await callback(client, refused)
    assert status == 403 and "You chose not to give FitGlue access" in html
    assert "connected to this FitGlue account now" in html and "Try again" not in html
    assert "If you do want to connect" not in html


async def test_a_used_link_after_a_disconnect_does_not_say_connected(client, runtime):
    url = await issue(runtime)
    assert (await callback(client, await decide_at_strava(await press_connect(client, url))))[0] == 200
    await SupportDesk(runtime).disconnect(ALICE, "test")
    response = await client.get(link_path(url))
    html = await response.text()
    assert response.status == 410 and "and it still is" not in html
    assert "not connected" in html and "new Connect link" in html
