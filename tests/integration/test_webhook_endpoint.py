"""`/webhooks/strava`: the validation GET and what the POST accepts, refuses and stores."""

from __future__ import annotations

import json

import pytest

from service.app.factory import build_app
from service.background.webhooks.intake import EventIntake
from service.desk.support_desk import SupportDesk
from service.web.strava_webhook import MAX_EVENT_BYTES
from standin import StravaStandin
from tests.conftest import VERIFY_TOKEN
from tests.webhook_support import all_events, all_jobs, point_public_url_at

EVENT = {"aspect_type": "create", "event_time": 1516126040, "object_id": 1360128428, "object_type": "activity",
         "owner_id": 134815, "subscription_id": 120475, "updates": {}}


@pytest.fixture
async def client(aiohttp_client, runtime):
    client = await aiohttp_client(build_app(runtime, background=False))
    point_public_url_at(runtime, client)
    return client


async def test_validation_echoes_the_challenge_as_json_only_for_our_token(client):
    ok = await client.get("/webhooks/strava", params={"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN,
                                                      "hub.challenge": "15f7d1a91c1f40f8a748fd134752feb3"})
    assert ok.status == 200
    assert ok.headers["Content-Type"].startswith("application/json")
    assert await ok.json() == {"hub.challenge": "15f7d1a91c1f40f8a748fd134752feb3"}
    for params in ({"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "x"},
                   {"hub.mode": "unsubscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "x"},
                   {"hub.verify_token": VERIFY_TOKEN, "hub.challenge": "x"},
                   {"hub.mode": "subscribe", "hub.challenge": "x"},
                   {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN}):
        refused = await client.get("/webhooks/strava", params=params)
        assert refused.status == 403, params


@pytest.mark.parametrize(("body", "status"), [
    (b"{not json", 400),
    (b"[]", 400),
    (json.dumps({k: v for k, v in EVENT.items() if k != "object_id"}).encode(), 400),
    (json.dumps({**EVENT, "owner_id": "134815"}).encode(), 400),
    (json.dumps({**EVENT, "updates": {"pad": "x" * (MAX_EVENT_BYTES + 10)}}).encode(), 413),
])
async def test_bad_bodies_get_a_clear_error_and_change_nothing(client, runtime, body, status):
    response = await client.post("/webhooks/strava", data=body, headers={"Content-Type": "application/json"})
    assert response.status == status
    error = await response.json()
    assert set(error) == {"error", "message"} and error["message"]
    assert await all_events(runtime) == [] and await all_jobs(runtime) == []


async def test_chunked_oversized_body_is_refused(client):
    async def chunks():
        for _ in range(20):
            yield b"x" * 1024

    response = await client.post("/webhooks/strava", data=chunks())
    assert response.status == 413


async def test_event_and_its_job_are_stored_once_and_redelivery_is_acknowledged(client, runtime):
    for _ in range(3):  # Strava makes up to three attempts with the very same body
        response = await client.post("/webhooks/strava", json=EVENT)
        assert response.status == 200
    events, jobs = await all_events(runtime), await all_jobs(runtime)
    assert len(events) == 1 and len(jobs) == 1
    assert jobs[0].kind == "webhook_event" and json.loads(jobs[0].payload) == {"event_id": events[0].id}
    assert (events[0].object_id, events[0].owner_id, events[0].state) == (1360128428, 134815, "new")


async def test_events_for_another_subscription_are_answered_200_and_ignored(client, runtime, standin: StravaStandin):
    report = await SupportDesk(runtime).webhooks.reregister_webhook("test")
    ours = report.status.subscription.id
    foreign = await client.post("/webhooks/strava", json={**EVENT, "subscription_id": ours + 1})
    assert foreign.status == 200 and (await foreign.json())["status"] == "ignored"
    assert await all_events(runtime) == []
    mine = await client.post("/webhooks/strava", json={**EVENT, "subscription_id": ours})
    assert mine.status == 200 and len(await all_events(runtime)) == 1


async def test_answers_503_when_the_event_cannot_be_stored(client, runtime, monkeypatch):
    async def broken(self, batch):
        raise OSError("disk full")

    monkeypatch.setattr(EventIntake, "_store", broken)
    response = await client.post("/webhooks/strava", json=EVENT)
    assert response.status == 503
    monkeypatch.undo()
    again = await client.post("/webhooks/strava", json=EVENT)  # Strava's next attempt succeeds
    assert again.status == 200 and len(await all_events(runtime)) == 1


async def test_concurrent_posts_are_batched_without_losing_or_doubling(client, runtime):
    import asyncio

    bodies = [{**EVENT, "object_id": 1000 + i} for i in range(60)] + [{**EVENT, "object_id": 1000}] * 5
    responses = await asyncio.gather(*(client.post("/webhooks/strava", json=b) for b in bodies))
    assert all(r.status == 200 for r in responses)
    statuses = [(await r.json())["status"] for r in responses]
    assert statuses.count("stored") == 60 and statuses.count("duplicate") == 5
    assert len(await all_events(runtime)) == 60 and len(await all_jobs(runtime)) == 60


async def test_metrics_report_events_queue_and_budget_without_personal_data(client, runtime):
    await client.post("/webhooks/strava", json=EVENT)
    await client.post("/webhooks/strava", json=EVENT)
    await client.post("/webhooks/strava", data=b"nope")
    text = await (await client.get("/metrics")).text()
    assert 'fitglue_webhook_events_received_total{outcome="stored"} 1' in text
    assert 'fitglue_webhook_events_received_total{outcome="duplicate"} 1' in text
    assert 'fitglue_webhook_events_received_total{outcome="rejected"} 1' in text
    assert 'fitglue_jobs{state="queued"} 1' in text
    assert 'fitglue_strava_rate_limit_limit{budget="read",window="15min"} 100' in text
    assert "134815" not in text and "@" not in text
