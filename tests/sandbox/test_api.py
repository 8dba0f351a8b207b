"""REST behaviour of the Strava stand-in: scopes, visibility, updates, rate limits, failure injection."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from service.core.clock import ManualClock, to_epoch
from standin import StandinConfig, StravaStandin, build_standin_app, middleware
from standin.testing import connect_athlete

READ_MISSING = {
    "message": "Authorization Error",
    "errors": [{"resource": "AccessToken", "field": "activity:read_permission", "code": "missing"}],
}
WRITE_MISSING = {
    "message": "Authorization Error",
    "errors": [{"resource": "AccessToken", "field": "activity:write_permission", "code": "missing"}],
}
RATE_LIMITED = {
    "message": "Rate Limit Exceeded",
    "errors": [{"resource": "Application", "field": "rate limit", "code": "exceeded"}],
}
START = datetime(2026, 11, 27, 12, 0, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


async def setup(aiohttp_client: Any, clock: ManualClock, **config: Any) -> tuple[StravaStandin, Any]:
    standin = StravaStandin(StandinConfig(**config), clock)
    return standin, await aiohttp_client(build_standin_app(standin))


def bearer(tokens: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


async def test_athlete_summary_or_detailed_by_profile_scope(aiohttp_client: Any, clock: ManualClock) -> None:
    standin, client = await setup(aiohttp_client, clock)
    full = await connect_athlete(client)
    resp = await client.get("/api/v3/athlete", headers=bearer(full))
    body = await resp.json()
    assert resp.status == 200
    assert body["id"] == full["athlete"]["id"] and body["resource_state"] == 3
    plain = await connect_athlete(client, scope="read")
    body = await (await client.get("/api/v3/athlete", headers=bearer(plain))).json()
    assert body["resource_state"] == 2
    assert standin.calls[-1].athlete_id == plain["athlete"]["id"]


async def test_bad_token_is_401_athlete_invalid(aiohttp_client: Any, clock: ManualClock) -> None:
    _, client = await setup(aiohttp_client, clock)
    for headers in ({"Authorization": "Bearer nope"}, {}):
        resp = await client.get("/api/v3/athlete", headers=headers)
        assert resp.status == 401
        assert (await resp.json())["errors"] == [
            {"resource": "Athlete", "field": "access_token", "code": "invalid"}
        ]
        assert resp.headers["X-Ratelimit-Limit"] == "200,2000"


async def test_activity_scopes_are_enforced(aiohttp_client: Any, clock: ManualClock) -> None:
    standin, client = await setup(aiohttp_client, clock)
    tokens = await connect_athlete(client, scope="read,activity:write")
    activity_id = standin.add_activity(tokens["athlete"]["id"])
    listing = await client.get("/api/v3/athlete/activities", headers=bearer(tokens))
    assert listing.status == 401
    assert await listing.json() == READ_MISSING
    one = await client.get(f"/api/v3/activities/{activity_id}", headers=bearer(tokens))
    assert one.status == 401

    reader = await connect_athlete(client, scope="read,activity:read", athlete_id=tokens["athlete"]["id"])
    put = await client.put(f"/api/v3/activities/{activity_id}", json={"name": "x"}, headers=bearer(reader))
    assert put.status == 401
    assert await put.json() == WRITE_MISSING
    assert standin.state.activities[activity_id].name == "Morning Run"


async def test_only_you_activities_need_read_all(aiohttp_client: Any, clock: ManualClock) -> None:
    standin, client = await setup(aiohttp_client, clock)
    reader = await connect_athlete(client, scope="read,activity:read")
    athlete_id = reader["athlete"]["id"]
    public = standin.add_activity(athlete_id, name="Public", start_date=START - timedelta(days=1))
    hidden = standin.add_activity(athlete_id, name="Hidden", private=True)

    ids = [
        a["id"] for a in await (await client.get("/api/v3/athlete/activities", headers=bearer(reader))).json()
    ]
    assert ids == [public]
    assert (await client.get(f"/api/v3/activities/{hidden}", headers=bearer(reader))).status == 404

    everything = await connect_athlete(client, scope="read,activity:read_all", athlete_id=athlete_id)
    listing = await (await client.get("/api/v3/athlete/activities", headers=bearer(everything))).json()
    assert [a["id"] for a in listing] == [hidden, public]  # newest first
    detail = await client.get(f"/api/v3/activities/{hidden}", headers=bearer(everything))
    assert detail.status == 200
    assert (await detail.json())["private"] is True


async def test_listing_filters_and_pages(aiohttp_client: Any, clock: ManualClock) -> None:
    standin, client = await setup(aiohttp_client, clock)
    tokens = await connect_athlete(client)
    athlete_id = tokens["athlete"]["id"]
    ids = [standin.add_activity(athlete_id, start_date=START - timedelta(days=d)) for d in range(5)]
    after = to_epoch(START - timedelta(days=3, hours=1))
    resp = await client.get(
        "/api/v3/athlete/activities",
        params={"after": after, "per_page": 2, "page": 2},
        headers=bearer(tokens),
    )
    assert [a["id"] for a in await resp.json()] == [ids[2], ids[3]]
    before = to_epoch(START - timedelta(days=3, hours=1))
    resp = await client.get("/api/v3/athlete/activities", params={"before": before}, headers=bearer(tokens))
    assert [a["id"] for a in await resp.json()] == [ids[4]]
    empty = await client.get("/api/v3/athlete/activities", params={"page": 9}, headers=bearer(tokens))
    assert await empty.json() == []


async def test_other_athletes_activity_is_not_found(aiohttp_client: Any, clock: ManualClock) -> None:
    standin, client = await setup(aiohttp_client, clock)
    tokens = await connect_athlete(client)
    other = standin.add_athlete()
    theirs = standin.add_activity(other)
    for path in (f"/api/v3/activities/{theirs}", "/api/v3/activities/999"):
        resp = await client.get(path, headers=bearer(tokens))
        assert resp.status == 404
        assert (await resp.json())["message"] == "Record Not Found"


async def test_update_activity_with_json_and_form(aiohttp_client: Any, clock: ManualClock) -> None:
    standin, client = await setup(aiohttp_client, clock)
    tokens = await connect_athlete(client)
    activity_id = standin.add_activity(tokens["athlete"]["id"])
    resp = await client.put(
        f"/api/v3/activities/{activity_id}",
        json={"name": "Enhanced", "description": "by FitGlue", "commute": True, "type": "Ride"},
        headers=bearer(tokens),
    )
    assert resp.status == 200
    body = await resp.json()
    assert (body["name"], body["description"], body["commute"], body["sport_type"]) == (
        "Enhanced",
        "by FitGlue",
        True,
        "Ride",
    )
    form = await client.put(
        f"/api/v3/activities/{activity_id}", data={"hide_from_home": "False"}, headers=bearer(tokens)
    )
    assert (await form.json())["hide_from_home"] is True  # Strava's form-boolean quirk (stravalib#716)
    assert standin.state.activities[activity_id].name == "Enhanced"


async def test_rate_limit_headers_casing_and_counting(aiohttp_client: Any, clock: ManualClock) -> None:
    _, client = await setup(aiohttp_client, clock)
    tokens = await connect_athlete(client)
    await client.get("/api/v3/athlete", headers=bearer(tokens))
    resp = await client.get("/api/v3/athlete", headers=bearer(tokens))
    names = {name for name, _ in resp.raw_headers}
    assert {
        b"X-Ratelimit-Limit",
        b"X-Ratelimit-Usage",
        b"X-Readratelimit-Limit",
        b"X-Readratelimit-Usage",
    } <= names
    assert resp.headers["X-Ratelimit-Usage"] == "2,2"
    assert resp.headers["X-Readratelimit-Limit"] == "100,1000"
    assert resp.headers["X-Readratelimit-Usage"] == "2,2"


async def test_429_counts_and_resets_at_next_quarter_hour(aiohttp_client: Any, clock: ManualClock) -> None:
    _, client = await setup(aiohttp_client, clock, read_limits=(2, 50), overall_limits=(10, 20))
    tokens = await connect_athlete(client)
    clock.advance(14 * 60)  # 12:14, still in the 12:00 window
    statuses = [(await client.get("/api/v3/athlete", headers=bearer(tokens))).status for _ in range(3)]
    assert statuses == [200, 200, 429]
    refused = await client.get("/api/v3/athlete", headers=bearer(tokens))
    assert refused.status == 429
    assert await refused.json() == RATE_LIMITED
    assert refused.headers["X-Readratelimit-Usage"] == "4,4"  # refused requests still count
    assert refused.headers["X-Ratelimit-Usage"] == "4,4"

    clock.advance(59)  # 12:14:59
    assert (await client.get("/api/v3/athlete", headers=bearer(tokens))).status == 429
    clock.advance(1)  # 12:15:00, a new window; the daily count carries on
    ok = await client.get("/api/v3/athlete", headers=bearer(tokens))
    assert ok.status == 200
    assert ok.headers["X-Readratelimit-Usage"] == "1,6"


async def test_daily_limit_holds_until_utc_midnight(aiohttp_client: Any, clock: ManualClock) -> None:
    _, client = await setup(aiohttp_client, clock, read_limits=(5, 2))
    tokens = await connect_athlete(client)
    for _ in range(2):
        assert (await client.get("/api/v3/athlete", headers=bearer(tokens))).status == 200
    clock.advance(30 * 60)
    assert (await client.get("/api/v3/athlete", headers=bearer(tokens))).status == 429
    clock.set(datetime(2026, 11, 28, 0, 0, 0, tzinfo=UTC))
    resp = await client.get("/api/v3/athlete", headers=bearer(tokens))
    assert resp.status == 401  # the token expired overnight, but the request was not refused
    assert resp.headers["X-Readratelimit-Usage"] == "1,1"


async def test_token_calls_do_not_count(aiohttp_client: Any, clock: ManualClock) -> None:
    standin, client = await setup(aiohttp_client, clock)
    await connect_athlete(client)
    assert standin.limits.read.usage(clock.now()) == (0, 0)


async def test_fail_next_injects_n_failures_on_a_path(aiohttp_client: Any, clock: ManualClock) -> None:
    standin, client = await setup(aiohttp_client, clock)
    tokens = await connect_athlete(client)
    standin.fail_next("/oauth/token", 503, count=2)
    data = {
        "client_id": "1001",
        "client_secret": "sandbox-secret",
        "grant_type": "refresh_token",
        "refresh_token": tokens["refresh_token"],
    }
    statuses = [(await client.post("/oauth/token", data=data)).status for _ in range(3)]
    assert statuses == [503, 503, 200]
    assert standin.count_calls("POST", "/oauth/token") == 4  # the exchange and three refreshes
    assert [c.status for c in standin.calls[-3:]] == [503, 503, 200]

    standin.fail_next("/api/v3/athlete", 429, body={"message": "custom"})
    resp = await client.get("/api/v3/athlete", headers=bearer(tokens))
    assert resp.status == 429
    assert await resp.json() == {"message": "custom"}
    assert "X-Ratelimit-Usage" in resp.headers
    assert (await client.get("/api/v3/athlete", headers=bearer(tokens))).status == 200


async def test_fail_next_timeout_hangs_the_request(
    aiohttp_client: Any, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(middleware, "INJECTED_TIMEOUT_S", 2.0)
    standin, client = await setup(aiohttp_client, clock)
    standin.fail_next("/oauth/token", 503, timeout=True)
    with pytest.raises(asyncio.TimeoutError):
        await client.post("/oauth/token", data={}, timeout=aiohttp.ClientTimeout(total=0.2))
    assert standin.count_calls("POST", "/oauth/token") == 1


async def test_unknown_api_route_is_json_404(aiohttp_client: Any, clock: ManualClock) -> None:
    _, client = await setup(aiohttp_client, clock)
    resp = await client.get("/api/v3/nothing-here")
    assert resp.status == 404
    assert await resp.json() == {"message": "Resource Not Found"}


async def test_limits_follow_the_config_when_changed(aiohttp_client: Any, clock: ManualClock) -> None:
    standin, client = await setup(aiohttp_client, clock)
    tokens = await connect_athlete(client)
    standin.config.read_limits = (200, 2000)  # e.g. the app was upgraded
    resp = await client.get("/api/v3/athlete", headers=bearer(tokens))
    assert resp.headers["X-Readratelimit-Limit"] == "200,2000"
