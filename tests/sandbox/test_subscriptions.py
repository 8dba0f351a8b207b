"""Push subscriptions and webhook events of the Strava stand-in, against a tiny callback app."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from service.core.clock import ManualClock, to_epoch
from standin import StandinConfig, StravaStandin, build_standin_app, start_standin
from standin.testing import connect_athlete

CREDS = {"client_id": "1001", "client_secret": "sandbox-secret"}


class Callback:
    """A webhook receiver that records what it gets; ``mode`` picks how it answers validation."""

    def __init__(self) -> None:
        self.mode = "echo"
        self.validations: list[dict[str, str]] = []
        self.events: list[dict[str, Any]] = []
        self.event_status = 200

    async def get(self, request: web.Request) -> web.Response:
        self.validations.append(dict(request.query))
        challenge = request.query.get("hub.challenge", "")
        if self.mode == "echo":
            return web.json_response({"hub.challenge": challenge})
        if self.mode == "wrong":
            return web.json_response({"hub.challenge": "not-it"})
        if self.mode == "slow":
            await asyncio.sleep(3)
            return web.json_response({"hub.challenge": challenge})
        return web.Response(status=403)

    async def post(self, request: web.Request) -> web.Response:
        self.events.append(await request.json())
        return web.Response(status=self.event_status)


@pytest.fixture
def callback() -> Callback:
    return Callback()


@pytest.fixture
async def callback_url(aiohttp_server: Any, callback: Callback) -> str:
    app = web.Application()
    app.router.add_get("/webhooks/strava", callback.get)
    app.router.add_post("/webhooks/strava", callback.post)
    server = await aiohttp_server(app)
    return str(server.make_url("/webhooks/strava"))


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


async def setup(aiohttp_client: Any, clock: ManualClock) -> tuple[StravaStandin, Any]:
    standin = StravaStandin(StandinConfig(), clock)
    return standin, await aiohttp_client(build_standin_app(standin))


async def subscribe(client: Any, url: str, verify_token: str = "STRAVA") -> Any:
    return await client.post(
        "/api/v3/push_subscriptions", data={**CREDS, "callback_url": url, "verify_token": verify_token}
    )


async def test_create_validates_callback_then_201(
    aiohttp_client: Any, clock: ManualClock, callback: Callback, callback_url: str
) -> None:
    standin, client = await setup(aiohttp_client, clock)
    resp = await subscribe(client, callback_url, "my-token")
    assert resp.status == 201
    body = await resp.json()
    assert set(body) == {"id", "resource_state", "application_id", "callback_url", "created_at", "updated_at"}
    assert body["callback_url"] == callback_url
    assert body["application_id"] == 1001
    assert body["created_at"] == "2026-11-27T12:00:00Z"
    assert standin.subscription == body
    [validation] = callback.validations
    assert validation["hub.verify_token"] == "my-token"
    assert validation["hub.mode"] == "subscribe"
    assert len(validation["hub.challenge"]) >= 16

    listed = await client.get("/api/v3/push_subscriptions", params=CREDS)
    assert listed.status == 200
    assert await listed.json() == [body]


@pytest.mark.parametrize("mode", ["wrong", "refuse", "slow"])
async def test_create_fails_when_callback_does_not_verify(
    aiohttp_client: Any, clock: ManualClock, callback: Callback, callback_url: str, mode: str
) -> None:
    standin, client = await setup(aiohttp_client, clock)
    callback.mode = mode
    resp = await subscribe(client, callback_url)
    assert resp.status == 400
    assert await resp.json() == {
        "message": "Bad Request",
        "errors": [{"resource": "PushSubscription", "field": "callback url", "code": "not verifiable"}],
    }
    assert standin.subscription is None
    assert len(callback.validations) == 1


async def test_create_when_one_exists(
    aiohttp_client: Any, clock: ManualClock, callback: Callback, callback_url: str
) -> None:
    _, client = await setup(aiohttp_client, clock)
    assert (await subscribe(client, callback_url)).status == 201
    again = await subscribe(client, callback_url)
    assert again.status == 400
    assert (await again.json())["errors"] == [
        {"resource": "PushSubscription", "field": "", "code": "already exists"}
    ]
    assert len(callback.validations) == 1  # no second validation GET


async def test_too_long_callback_url_is_rejected(
    aiohttp_client: Any, clock: ManualClock, callback: Callback
) -> None:
    _, client = await setup(aiohttp_client, clock)
    resp = await subscribe(client, "http://127.0.0.1/" + "x" * 250)
    assert resp.status == 400
    assert callback.validations == []


async def test_delete_then_list_empty(aiohttp_client: Any, clock: ManualClock, callback_url: str) -> None:
    standin, client = await setup(aiohttp_client, clock)
    created = await (await subscribe(client, callback_url)).json()
    missing = await client.delete("/api/v3/push_subscriptions/1", params=CREDS)
    assert missing.status == 404
    assert await missing.json() == {"message": "Resource Not Found"}
    deleted = await client.delete(f"/api/v3/push_subscriptions/{created['id']}", params=CREDS)
    assert deleted.status == 204
    assert await deleted.read() == b""
    assert standin.subscription is None
    assert await (await client.get("/api/v3/push_subscriptions", params=CREDS)).json() == []


async def test_subscription_calls_need_the_right_secret(
    aiohttp_client: Any, clock: ManualClock, callback: Callback, callback_url: str
) -> None:
    standin, client = await setup(aiohttp_client, clock)
    wrong = await client.get("/api/v3/push_subscriptions", params={**CREDS, "client_secret": "x"})
    assert wrong.status == 401
    assert (await wrong.json())["errors"] == [{"resource": "Application", "field": "", "code": "invalid"}]
    standin.reject_client_secret()
    assert (await subscribe(client, callback_url)).status == 401
    assert callback.validations == []
    assert standin.limits.read.usage(clock.now()) == (0, 0)  # app-level calls are not counted


async def test_push_event_is_delivered_as_posted(
    aiohttp_client: Any, clock: ManualClock, callback: Callback, callback_url: str
) -> None:
    standin, client = await setup(aiohttp_client, clock)
    sub = await (await subscribe(client, callback_url)).json()
    event = {
        "aspect_type": "update",
        "object_id": 1,
        "object_type": "activity",
        "owner_id": 2,
        "updates": {"title": "Messy"},
    }
    assert await standin.push_event(event) == 200
    assert callback.events == [{**event, "subscription_id": sub["id"], "event_time": to_epoch(clock.now())}]
    callback.event_status = 500
    assert await standin.push_event(event) == 500
    assert [d.status for d in standin.deliveries] == [200, 500]


async def test_push_event_without_subscription_raises(aiohttp_client: Any, clock: ManualClock) -> None:
    standin, _ = await setup(aiohttp_client, clock)
    with pytest.raises(LookupError):
        await standin.push_event({"aspect_type": "create"})


async def test_revoke_pushes_deauthorization_event(
    aiohttp_client: Any, clock: ManualClock, callback: Callback, callback_url: str
) -> None:
    standin, client = await setup(aiohttp_client, clock)
    sub = await (await subscribe(client, callback_url)).json()
    tokens = await connect_athlete(client)
    athlete_id = tokens["athlete"]["id"]
    standin.revoke_athlete(athlete_id)
    await standin.wait_for_deliveries()
    assert callback.events == [
        {
            "aspect_type": "update",
            "event_time": to_epoch(clock.now()),
            "object_id": athlete_id,
            "object_type": "athlete",
            "owner_id": athlete_id,
            "subscription_id": sub["id"],
            "updates": {"authorized": "false"},
        }
    ]


async def test_create_activity_and_notify_follows_scopes(
    aiohttp_client: Any, clock: ManualClock, callback: Callback, callback_url: str
) -> None:
    standin, client = await setup(aiohttp_client, clock)
    await subscribe(client, callback_url)
    reader = await connect_athlete(client, scope="read,activity:read")
    athlete_id = reader["athlete"]["id"]
    public = await standin.create_activity_and_notify(athlete_id, name="Lunch Ride", sport_type="Ride")
    await standin.create_activity_and_notify(athlete_id, private=True)  # Only You: not for activity:read
    assert [(e["aspect_type"], e["object_id"], e["owner_id"], e["updates"]) for e in callback.events] == [
        ("create", public, athlete_id, {})
    ]
    assert standin.state.activities[public].sport_type == "Ride"


async def test_start_standin_serves_on_a_real_port(callback: Callback) -> None:
    clock = ManualClock()
    standin, runner, base = await start_standin(config=StandinConfig(latency_s=0.01), clock=clock)
    try:
        assert base.startswith("http://127.0.0.1:") and not base.endswith(":0")
        async with aiohttp.ClientSession() as http:
            tokens = await connect_athlete(http, base=base)
            async with http.get(
                f"{base}/api/v3/athlete", headers={"Authorization": f"Bearer {tokens['access_token']}"}
            ) as resp:
                assert resp.status == 200
            async with http.get(f"{base}/") as resp:
                assert "not the real Strava" in await resp.text()
        assert standin.count_calls("GET", "/api/v3/athlete") == 1
    finally:
        await runner.cleanup()
