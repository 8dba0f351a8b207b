"""The stand-in's controls as JSON routes and form posts: each failure on demand, bad input refused with
nothing changed, and the consent page choosing nobody already connected (issue 14)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from service.app.sandbox.front_page import follow_the_standin
from service.core.clock import ManualClock
from service.core.settings import Settings
from standin import StandinConfig, StravaStandin, build_standin_app
from standin.controls import DEFAULT_NAMES
from standin.testing import connect_athlete

JSON = {"Accept": "application/json"}
MAX_CAPACITY = 10_000_000  # FITGLUE_STRAVA_ATHLETE_CAPACITY's upper bound


@pytest.fixture
async def world(aiohttp_client: Any, clock: ManualClock) -> tuple[Any, StravaStandin]:
    standin = StravaStandin(StandinConfig(athlete_capacity=10), clock)
    client = await aiohttp_client(build_standin_app(standin))
    standin.base_url = str(client.make_url("")).rstrip("/")
    return client, standin


async def control(client: Any, path: str, status: int = 200, **body: Any) -> dict[str, Any]:
    answer = await client.post(path, json=body, headers=JSON)
    assert answer.status == status, await answer.text()
    return await answer.json()


async def test_new_athletes_get_distinct_names_and_the_page_says_what_happened(world):
    client, standin = world
    names = [(await control(client, "/sandbox/athletes"))["firstname"] for _ in range(3)]
    assert names == [first for first, _last in DEFAULT_NAMES[:3]]
    named = await control(client, "/sandbox/athletes", firstname="Ada", lastname="Lovelace")
    assert standin.state.athletes[named["athlete_id"]].lastname == "Lovelace"
    form = await client.post("/sandbox/athletes", data={"firstname": "<b>x</b>"}, allow_redirects=False)
    assert form.status == 303 and form.headers["Location"].startswith("/?done=")
    page = await (await client.get(form.headers["Location"])).text()
    assert "Created &lt;b&gt;x&lt;/b&gt;" in page and "<b>x</b>" not in page


async def test_capacity_is_followed_and_bad_values_change_nothing(world):
    client, standin = world
    heard: list[int | None] = []
    standin.on_capacity_change.append(heard.append)
    await control(client, "/sandbox/capacity", capacity=1)
    await control(client, "/sandbox/capacity", capacity="none")
    assert heard == [1, None] and standin.config.athlete_capacity is None
    for bad in ("two", 0, -1, True, "1.5"):
        refused = await control(client, "/sandbox/capacity", 400, capacity=bad)
        assert refused["error"] == "bad_argument" and standin.config.athlete_capacity is None
    assert heard == [1, None]


async def test_a_capacity_the_sandbox_settings_refuse_is_a_400_and_changes_nothing(world):
    """The sandbox follows the capacity into its settings, whose FITGLUE_STRAVA_ATHLETE_CAPACITY has an
    upper bound: past it the control answers 400 naming the bound, and neither side changes (it was a
    500 with a traceback, the stand-in at the new value and the service's settings at the old)."""
    client, standin = world
    settings = Settings.from_values(strava_athlete_capacity=10)
    sandbox = SimpleNamespace(settings=settings, standin=standin, write_export=lambda: None)
    rt, front = SimpleNamespace(settings=settings), SimpleNamespace(export_line="")
    follow_the_standin(sandbox, rt, front)  # type: ignore[arg-type]
    refused = await control(client, "/sandbox/capacity", 400, capacity=MAX_CAPACITY + 1)
    assert refused["error"] == "bad_argument" and "FITGLUE_STRAVA_ATHLETE_CAPACITY" in refused["message"]
    assert standin.config.athlete_capacity == 10 and rt.settings.strava_athlete_capacity == 10
    await control(client, "/sandbox/capacity", capacity=MAX_CAPACITY)
    assert standin.config.athlete_capacity == MAX_CAPACITY == rt.settings.strava_athlete_capacity


async def test_a_used_up_read_budget_answers_429(world):
    client, standin = world
    token = (await connect_athlete(client))["access_token"]
    await control(client, "/sandbox/rate-limit/exhaust", window="15min")
    answer = await client.get("/api/v3/athlete/activities", headers={"Authorization": f"Bearer {token}"})
    assert answer.status == 429 and answer.headers["X-Readratelimit-Usage"].startswith("101,")
    assert (await control(client, "/sandbox/rate-limit/exhaust", 400, window="weekly"))["error"] == "bad_argument"


async def test_an_outage_answers_503_until_it_ends(world, clock):
    client, standin = world
    tokens = await connect_athlete(client)
    await control(client, "/sandbox/outage", minutes=5, kind="5xx")
    auth = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert (await client.get("/api/v3/athlete", headers=auth)).status == 503
    refresh = {"client_id": "1001", "client_secret": "sandbox-secret", "grant_type": "refresh_token",
               "refresh_token": tokens["refresh_token"]}
    assert (await client.post("/oauth/token", data=refresh)).status == 503
    assert (await client.get("/")).status == 200  # the pages stay up
    clock.advance(301)
    assert (await client.get("/api/v3/athlete", headers=auth)).status == 200  # over by itself
    await control(client, "/sandbox/outage", minutes=5)
    await control(client, "/sandbox/outage", minutes=0)
    assert (await client.get("/api/v3/athlete", headers=auth)).status == 200
    assert (await control(client, "/sandbox/outage", 400, minutes=5, kind="flaky"))["error"] == "bad_argument"


async def test_revoke_without_the_event_and_a_rotated_refresh_token(world):
    client, standin = world
    first = await connect_athlete(client)
    second = await connect_athlete(client)
    standin.subscription = {"id": 1, "callback_url": "http://127.0.0.1:9/nowhere"}
    await control(client, f"/sandbox/athletes/{first['athlete']['id']}/revoke", event=False)
    await standin.wait_for_deliveries()
    assert standin.deliveries == [] and first["athlete"]["id"] not in standin.state.grants
    await control(client, f"/sandbox/athletes/{second['athlete']['id']}/rotate-refresh-token")
    refresh = {"client_id": "1001", "client_secret": "sandbox-secret", "grant_type": "refresh_token",
               "refresh_token": second["refresh_token"]}
    answer = await client.post("/oauth/token", data=refresh)
    assert answer.status == 400 and "RefreshToken" in await answer.text()
    assert (await control(client, "/sandbox/athletes/999/revoke", 404))["error"] == "no_such_athlete"
    assert (await control(client, f"/sandbox/athletes/{first['athlete']['id']}/revoke", 400, event="maybe"))


async def test_activity_update_and_delete(world):
    client, standin = world
    athlete = (await control(client, "/sandbox/athletes"))["athlete_id"]
    activity = (await control(client, f"/sandbox/athletes/{athlete}/activities"))["activity_id"]
    updated = await control(client, f"/sandbox/activities/{activity}/update")
    assert updated["callback_status"] is None  # no push subscription: nothing to send
    assert standin.state.activities[activity].name.endswith("(edited)")
    await control(client, f"/sandbox/activities/{activity}/delete")
    assert activity not in standin.state.activities
    assert (await control(client, f"/sandbox/activities/{activity}/delete", 404))["error"] == "no_such_activity"


async def test_cross_site_posts_and_bad_json_change_nothing(world):
    client, standin = world
    refused = await client.post("/sandbox/athletes", headers={"Sec-Fetch-Site": "cross-site"})
    assert refused.status == 403 and standin.state.athletes == {}
    bad = await client.post("/sandbox/capacity", data=b"{", headers={**JSON, "Content-Type": "application/json"})
    assert bad.status == 400 and (await bad.json())["error"] == "bad_json"
    status = await (await client.get("/sandbox/status")).json()
    assert status["capacity"] == 10 and status["athletes"] == [] and status["outage"] is None


async def test_the_consent_page_never_preselects_an_athlete_already_connected(world):
    client, standin = world
    connected = (await connect_athlete(client))["athlete"]["id"]
    params = {"client_id": "1001", "redirect_uri": "http://localhost:8080/cb", "response_type": "code",
              "scope": "read", "state": "s"}
    page = await (await client.get("/oauth/authorize", params=params)).text()
    assert f'value="{connected}" checked' not in page and 'value="new" checked' in page
    assert 'value="Kip"' in page  # the next default name, not a second "Sandy Runner"
    free = (await control(client, "/sandbox/athletes"))["athlete_id"]
    page = await (await client.get("/oauth/authorize", params=params)).text()
    assert f'value="{free}" checked' in page and 'value="new" checked' not in page


def test_the_world_survives_a_restart(tmp_path, clock):
    standin = StravaStandin(clock=clock)
    athlete = standin.add_athlete()
    standin.add_activity(athlete)
    code = standin.state.approve(athlete, ["read", "activity:read"], clock.now())
    standin.state.redeem_code(code.code, clock.now())
    standin.subscription = {"id": 131300, "callback_url": "http://localhost:8080/webhooks/strava"}
    standin.save(tmp_path / "standin.json")
    again = StravaStandin(clock=clock)
    assert again.restore(tmp_path / "standin.json")
    assert again.state == standin.state and again.subscription == standin.subscription
    (tmp_path / "other.json").write_text('{"version": 99}')
    with pytest.raises(ValueError):
        again.restore(tmp_path / "other.json")


async def test_a_started_standin_answers_only_to_loopback_names(clock):
    """DNS rebinding (see tests/sandbox_slack): the sandbox's stand-in, started on loopback, refuses
    requests addressed to any other name; its own calls and pages use 127.0.0.1."""
    import aiohttp

    from standin import start_standin

    standin, runner, base = await start_standin(clock=clock)
    try:
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{base}/sandbox/athletes", json={}, headers={**JSON, "Host": "rebind.example"}) as r:
                assert r.status == 421
            assert standin.state.athletes == {}
            async with http.get(f"{base}/sandbox/status") as r:
                assert r.status == 200
    finally:
        await runner.cleanup()
