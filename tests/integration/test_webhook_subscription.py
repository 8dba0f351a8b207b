"""Checking and repairing the push subscription against the stand-in, which validates our real
callback with a GET exactly as Strava does."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json

import pytest
from sqlalchemy import select

from service.app.factory import build_app
from service.background.job_handlers import run_pending
from service.db.models import ActivitySummary, AuditEntry, WebhookRegistration
from service.desk.api_models import WebhookRegistrationBody, WebhookStatusBody
from service.desk.support_desk import SupportDesk, SupportError
from service.strava.errors import classify
from standin import StravaStandin
from standin.faults import SUBSCRIPTION_EXISTS
from tests.flows import connect
from tests.webhook_support import all_jobs, connect_directly, point_public_url_at


@pytest.fixture
async def client(aiohttp_client, runtime):
    client = await aiohttp_client(build_app(runtime, background=False))
    point_public_url_at(runtime, client)
    return client


async def registrations(runtime) -> list[WebhookRegistration]:
    async with runtime.sessions() as session:
        return list((await session.execute(select(WebhookRegistration).order_by(WebhookRegistration.id))).scalars())


async def test_no_subscription_is_created_after_strava_validates_our_callback(client, runtime, standin):
    desk = SupportDesk(runtime)
    before = WebhookStatusBody.of(await desk.webhooks.webhook_status()).to_json()
    assert before == {"subscription": None, "callback_matches": False, "last_event_at": None,
                      "last_registration": None}
    report = await desk.webhooks.reregister_webhook("slack:U123")
    data = WebhookRegistrationBody.of(report).to_json()
    assert report.outcome == "repaired"
    assert standin.subscription is not None
    assert standin.subscription["callback_url"] == runtime.settings.webhook_callback_url
    assert data["subscription"] == {"id": standin.subscription["id"], "callback_url": runtime.settings.webhook_callback_url}
    assert data["callback_matches"] is True
    assert data["last_registration"]["outcome"] == "repaired" and data["last_registration"]["error"] is None
    assert [s["step"] for s in data["steps"]] == ["check_callback", "list", "create"]
    [row] = await registrations(runtime)
    assert (row.actor, row.outcome, row.subscription_id) == ("slack:U123", "repaired", standin.subscription["id"])
    async with runtime.sessions() as session:
        audit = (await session.execute(select(AuditEntry).where(AuditEntry.action == "reregister_webhook"))).scalar_one()
    assert (audit.actor, audit.result) == ("slack:U123", "repaired")
    # Secrets never reach the report.
    assert standin.config.client_secret not in json.dumps(data)
    assert runtime.settings.strava_webhook_verify_token.get_secret_value() not in json.dumps(data)


async def test_a_healthy_subscription_is_left_alone(client, runtime, standin):
    desk = SupportDesk(runtime)
    first = await desk.webhooks.reregister_webhook("test")
    again = await desk.webhooks.reregister_webhook("test")
    assert again.outcome == "unchanged" and again.status.subscription == first.status.subscription
    assert standin.count_calls("POST", "/api/v3/push_subscriptions") == 1
    assert standin.count_calls("DELETE", "/api/v3/push_subscriptions") == 0


async def test_a_subscription_pointing_elsewhere_is_replaced(client, runtime, standin: StravaStandin):
    standin.subscription = {"id": 999, "resource_state": 2, "application_id": 1001,
                            "callback_url": "http://old-host.example/webhooks/strava",
                            "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"}
    desk = SupportDesk(runtime)
    status = WebhookStatusBody.of(await desk.webhooks.webhook_status()).to_json()
    assert status["subscription"]["id"] == 999 and status["callback_matches"] is False
    report = await desk.webhooks.reregister_webhook("test")
    steps = [s["step"] for s in report.steps]
    assert steps == ["check_callback", "list", "delete", "create"]
    assert "999" in report.steps[2]["description"]
    assert standin.subscription["id"] != 999 and report.status.callback_matches


async def test_already_exists_is_resolved_by_listing_again(client, runtime, standin: StravaStandin, monkeypatch):
    strava = runtime.strava

    async def racing_create(callback_url, verify_token):
        # Another replica creates it between our list and our create.
        await standin.create_subscription(callback_url, verify_token)
        raise classify(400, SUBSCRIPTION_EXISTS, "subscription create")

    monkeypatch.setattr(strava, "create_subscription", racing_create)
    report = await SupportDesk(runtime).webhooks.reregister_webhook("test")
    assert report.ok and report.status.subscription.id == standin.subscription["id"]
    assert "already existed" in report.steps[-1]["description"]


async def test_already_exists_pointing_elsewhere_is_a_clear_failure(client, runtime, standin, monkeypatch):
    async def exists(callback_url, verify_token):
        raise classify(400, SUBSCRIPTION_EXISTS, "subscription create")

    monkeypatch.setattr(runtime.strava, "create_subscription", exists)
    report = await SupportDesk(runtime).webhooks.reregister_webhook("test")
    assert report.outcome == "failed" and "already exists" in report.error
    assert (await registrations(runtime))[-1].outcome == "failed"


async def test_nothing_is_deleted_while_our_callback_cannot_answer(runtime, standin: StravaStandin):

    runtime.settings = runtime.settings.replaced(public_url="http://127.0.0.1:9")  # nobody listens
    standin.subscription = {"id": 999, "callback_url": "http://old-host.example/webhooks/strava"}
    report = await SupportDesk(runtime).webhooks.reregister_webhook("test")
    assert report.outcome == "failed" and "could not be reached" in report.error
    assert standin.subscription["id"] == 999  # the old one is kept: a new one could not be created
    data = WebhookRegistrationBody.of(report).to_json()
    assert data["last_registration"]["outcome"] == "failed" and data["last_registration"]["error"] == report.error


async def test_strava_refusing_the_callback_is_recorded_with_its_error(client, runtime, standin):
    standin.fail_next("/api/v3/push_subscriptions", 400, {"message": "Bad Request", "errors": [
        {"resource": "PushSubscription", "field": "callback url", "code": "not verifiable"}]})
    report = await SupportDesk(runtime).webhooks.reregister_webhook("test")
    assert report.outcome == "failed" and "not verifiable" in report.error
    assert (await registrations(runtime))[-1].error == report.error


async def test_catch_up_after_a_repair_fetches_what_was_missed(client, runtime, standin, clock):
    athlete = await connect_directly(runtime, standin)
    clock.advance(hours=1)
    missed = [standin.add_activity(athlete, name=f"Missed {i}") for i in range(3)]  # no subscription: no events
    report = await SupportDesk(runtime).webhooks.reregister_webhook("test")
    assert report.catch_up_queued == 1 and report.steps[-1]["step"] == "catch_up"
    [job] = [j for j in await all_jobs(runtime) if j.kind == "catch_up"]
    assert job.priority == 50 and job.user_id is not None
    await run_pending(runtime)
    async with runtime.sessions() as session:
        stored = set((await session.execute(select(ActivitySummary.id))).scalars())
    assert stored == set(missed)
    assert standin.count_calls("GET", "/api/v3/athlete/activities") == 2  # one page, then the empty one
    # Repeating the repair at once queues nothing new for the same "since".
    assert (await SupportDesk(runtime).webhooks.reregister_webhook("test")).catch_up_queued == 0


async def test_a_successful_connect_ensures_the_subscription_exists(client, runtime, standin):
    url = (await SupportDesk(runtime).issue_connect_link("bob@example.com", "test")).url
    status, _html = await connect(client, url)
    assert status == 200
    await asyncio.gather(*list(runtime._tasks))  # the hook runs after the page went out
    assert standin.subscription is not None
    assert standin.subscription["callback_url"] == runtime.settings.webhook_callback_url
    [row] = await registrations(runtime)
    assert (row.actor, row.outcome) == ("connect", "repaired")


async def test_a_failing_ensure_never_fails_the_connect(aiohttp_client, runtime, standin):
    client = await aiohttp_client(build_app(runtime, background=False))  # public URL left unreachable
    url = (await SupportDesk(runtime).issue_connect_link("carol@example.com", "test")).url
    status, html = await connect(client, url)
    assert status == 200 and "Connected" in html
    await asyncio.gather(*list(runtime._tasks))
    assert (await registrations(runtime))[-1].outcome == "failed"


async def test_status_when_strava_is_unreachable_is_a_support_error(runtime, standin):
    standin.fail_next("/api/v3/push_subscriptions", 503)
    with pytest.raises(SupportError) as failure:
        await SupportDesk(runtime).webhooks.webhook_status()
    assert failure.value.code == "strava_unavailable" and failure.value.exit_code == 1


def run_cli(*argv: str) -> tuple[int, str]:
    from service.app.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(list(argv))
    return code, out.getvalue()


def test_cli_webhook_exit_codes(tmp_path, monkeypatch):
    from tests.conftest import SECRET_KEY

    monkeypatch.chdir(tmp_path)
    for name in ("STRAVA_CLIENT_ID", "STRAVA_CLIENT_SECRET", "STRAVA_API_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FITGLUE_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("FITGLUE_SECRET_KEY", SECRET_KEY)
    assert run_cli("db", "upgrade")[0] == 0
    code, out = run_cli("webhook", "status", "--json")
    assert code == 2 and json.loads(out)["error"] == "configuration" and "STRAVA_CLIENT_ID" in json.loads(out)["message"]
    monkeypatch.setenv("STRAVA_CLIENT_ID", "1001")
    monkeypatch.setenv("STRAVA_CLIENT_SECRET", "sandbox-secret")
    monkeypatch.setenv("STRAVA_API_URL", "http://127.0.0.1:9/api/v3")  # nobody listens
    code, out = run_cli("webhook", "status", "--json")
    assert code == 1 and json.loads(out)["error"] == "strava_unavailable"
    assert "sandbox-secret" not in out
    monkeypatch.setenv("STRAVA_WEBHOOK_VERIFY_TOKEN", "tok")
    code, out = run_cli("webhook", "register", "--json")
    assert code == 1 and json.loads(out)["error"] == "registration_failed"


async def test_cli_webhook_register_against_the_standin(client, runtime, standin, monkeypatch, tmp_path):
    """`fitglue webhook register` in its own process settings (a thread here) repairs the subscription
    of the running service, whose callback the stand-in validates."""
    monkeypatch.chdir(tmp_path)
    env = {"FITGLUE_DATABASE_URL": runtime.settings.database_url, "FITGLUE_SECRET_KEY": runtime.settings.secret_key.get_secret_value(),
           "STRAVA_CLIENT_ID": standin.config.client_id, "STRAVA_CLIENT_SECRET": standin.config.client_secret,
           "STRAVA_API_URL": f"{standin.base_url}/api/v3", "STRAVA_OAUTH_URL": f"{standin.base_url}/oauth",
           "STRAVA_WEBHOOK_VERIFY_TOKEN": runtime.settings.strava_webhook_verify_token.get_secret_value(),
           "FITGLUE_PUBLIC_URL": runtime.settings.public_url}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    code, out = await asyncio.to_thread(run_cli, "webhook", "register", "--json")
    assert code == 0, out
    data = json.loads(out)
    assert data["callback_matches"] is True and data["subscription"]["id"] == standin.subscription["id"]
    code, out = await asyncio.to_thread(run_cli, "webhook", "status")
    assert code == 0 and "our callback" in out


async def test_after_re_registration_every_reader_sees_the_new_id_at_once(client, runtime, standin: StravaStandin):
    """One subscription cache per runtime (service.subscription.cache): the intake, the event
    processing and the desk's live look all drop what they knew when a registration replaces the
    subscription, without waiting for any lifetime to pass (the clock does not move here)."""
    from service.background.webhooks.intake import EventIntake
    from service.subscription.cache import subscription_cache

    desk = SupportDesk(runtime)
    first = (await desk.webhooks.reregister_webhook("test")).status.subscription
    assert first is not None
    intake = EventIntake(runtime)
    try:
        cache = subscription_cache(runtime)
        assert not await intake.is_foreign(first.id) and await intake.is_foreign(first.id + 1)
        assert await cache.our_id(look_up=True) == first.id
        assert (await cache.look()).callback_url == runtime.settings.webhook_callback_url
        # Strava's subscription now points elsewhere: the repair deletes it and creates a new one.
        standin.subscription = {**standin.subscription, "callback_url": "http://old-host.example/webhooks/strava"}
        second = (await desk.webhooks.reregister_webhook("test")).status.subscription
        assert second is not None and second.id != first.id
        assert await intake.is_foreign(first.id) and not await intake.is_foreign(second.id)
        assert await cache.our_id(look_up=True) == second.id
        look = await cache.look()
        assert look.exists and look.callback_url == runtime.settings.webhook_callback_url
        assert (await desk.diagnose("x@example.com")).facts["subscription"]["callback_url"] == look.callback_url
    finally:
        await intake.close()


async def test_one_subscription_cache_and_one_connect_hook_per_runtime(aiohttp_client, runtime):
    """No module-level registry: the cache and the after-Connect hook are the runtime's own. Building
    the app changes nothing; starting it adds the hook once, however many apps share the runtime."""
    from service.subscription.cache import subscription_cache
    from service.subscription.registration import ensure_after_connect

    assert subscription_cache(runtime) is subscription_cache(runtime)
    hooks = list(runtime.on_connected)
    first, second = build_app(runtime, background=False), build_app(runtime, background=False)
    assert runtime.on_connected == hooks
    await aiohttp_client(first)
    await aiohttp_client(second)
    assert runtime.on_connected.count(ensure_after_connect(runtime)) == 1


async def test_a_callback_answering_without_end_fails_the_probe_at_once(runtime):
    """The probe reads our callback's answer up to a few kilobytes (it is a short JSON echo). It read
    the whole body: a 200 that streams without end held the probe for its 5 s timeout and the
    answer sat in memory meanwhile."""
    from aiohttp import web

    from service.subscription.registration import probe_callback

    async def endless(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        await response.prepare(request)
        with contextlib.suppress(ConnectionError):
            while True:
                await response.write(b"[" * 4096)
        return response

    app = web.Application()
    app.router.add_get("/webhooks/strava", endless)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    runtime.settings = runtime.settings.replaced(public_url=f"http://127.0.0.1:{runner.addresses[0][1]}")
    loop = asyncio.get_running_loop()
    began = loop.time()
    try:
        ok, said = await probe_callback(runtime)
    finally:
        await runner.cleanup()
    assert ok is False and "did not echo hub.challenge" in said
    assert loop.time() - began < 4  # not PROBE_TIMEOUT_S (5 s), which ended it before
