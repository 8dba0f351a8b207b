"""The shared rate-limit ledger against the stand-in's real headers, on the injected clock."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest

from service.background.job_handlers import run_pending
from service.connections.refresh import usable_access_token
from service.desk.api_models import JobBody, RateLimitBody
from service.desk.support_desk import SupportDesk
from service.queue import WAITING_RATE_LIMIT
from service.ratelimit import BudgetExhausted
from service.ratelimit.windows import next_midnight, next_quarter
from standin import StravaStandin
from tests.webhook_support import (
    all_jobs,
    connect_directly,
    connection,
    subscribed_service,
)


async def token_of(runtime, athlete) -> str:
    token = await usable_access_token(runtime, (await connection(runtime, athlete)).id)
    assert token
    return token


def strava_usage(standin: StravaStandin, now):
    return standin.limits.overall.usage(now), standin.limits.read.usage(now)


def rate_429s(standin: StravaStandin) -> int:
    return sum(1 for call in standin.calls if call.status == 429)


async def test_usage_equals_the_last_headers_within_a_window_and_resets_after(runtime, standin, clock):
    athlete = await connect_directly(runtime, standin)
    token = await token_of(runtime, athlete)
    desk = SupportDesk(runtime)
    before = RateLimitBody.of(await desk.webhooks.rate_limit_report()).to_json()
    assert before["overall"]["15min"]["usage"] is None and before["observed_at"] is None
    assert before["read"]["15min"]["limit"] == 100 and before["overall"]["daily"]["limit"] == 2000  # defaults

    for _ in range(3):
        await runtime.strava.get_athlete(token)
    report = RateLimitBody.of(await desk.webhooks.rate_limit_report()).to_json()
    (overall_15, overall_day), (read_15, read_day) = strava_usage(standin, clock.now())
    assert (report["overall"]["15min"]["usage"], report["overall"]["daily"]["usage"]) == (overall_15, overall_day)
    assert (report["read"]["15min"]["usage"], report["read"]["daily"]["usage"]) == (read_15, read_day) == (3, 3)
    assert report["overall"]["15min"]["resets_at"] == "2026-11-27T14:15:00Z"
    assert report["overall"]["daily"]["resets_at"] == "2026-11-28T00:00:00Z"
    assert report["observed_at"] == "2026-11-27T14:03:00Z"

    clock.set(next_quarter(clock.now()))  # 14:15: the quarter-hour window reset, the day did not
    report = RateLimitBody.of(await desk.webhooks.rate_limit_report()).to_json()
    assert report["read"]["15min"]["usage"] is None and report["read"]["daily"]["usage"] == 3
    await runtime.strava.get_athlete(token)
    report = RateLimitBody.of(await desk.webhooks.rate_limit_report()).to_json()
    assert (report["read"]["15min"]["usage"], report["read"]["daily"]["usage"]) == (1, 4)

    clock.set(next_midnight(clock.now()))
    report = RateLimitBody.of(await desk.webhooks.rate_limit_report()).to_json()
    assert report["read"]["15min"]["usage"] is None and report["read"]["daily"]["usage"] is None


async def test_limits_come_from_the_headers(runtime, standin, clock):
    standin.config.read_limits = (200, 2000)  # the 10-athlete upgrade
    standin.config.overall_limits = (400, 4000)
    athlete = await connect_directly(runtime, standin)
    await runtime.strava.get_athlete(await token_of(runtime, athlete))
    report = RateLimitBody.of(await SupportDesk(runtime).webhooks.rate_limit_report()).to_json()
    assert report["read"]["15min"]["limit"] == 200 and report["overall"]["daily"]["limit"] == 4000


async def test_background_work_keeps_the_reserve_for_interactive_calls(runtime, standin, clock):
    standin.config.read_limits = (10, 1000)
    athlete = await connect_directly(runtime, standin)
    token = await token_of(runtime, athlete)
    await runtime.strava.get_athlete(token)  # learns the limit of 10 from the headers
    calls = 1
    with pytest.raises(BudgetExhausted) as refused:
        for _ in range(20):
            await runtime.strava.get_athlete(token)  # background (interactive=False)
            calls += 1
    assert calls == 9  # 10 minus the 10 % reserve
    # background may take what is left of the reserve in the window's last minute
    assert refused.value.resets_at == next_quarter(clock.now()) - timedelta(seconds=60)
    await runtime.strava.get_athlete(token, interactive=True)  # an agent's button still works
    with pytest.raises(BudgetExhausted):
        await runtime.strava.get_athlete(token, interactive=True)  # but never into a certain 429
    assert rate_429s(standin) == 0
    clock.set(next_quarter(clock.now()))
    await runtime.strava.get_athlete(token)  # the new window has room again


async def test_unused_reserve_goes_to_background_work_before_the_reset(runtime, standin, clock):
    standin.config.read_limits = (10, 1000)
    athlete = await connect_directly(runtime, standin)
    token = await token_of(runtime, athlete)
    for _ in range(9):
        await runtime.strava.get_athlete(token)
    with pytest.raises(BudgetExhausted) as refused:
        await runtime.strava.get_athlete(token)
    clock.set(refused.value.resets_at)  # one minute before the quarter ends: the reserve is released
    await runtime.strava.get_athlete(token)  # the 10th call, which no agent needed
    with pytest.raises(BudgetExhausted) as spent:
        await runtime.strava.get_athlete(token)
    assert spent.value.resets_at == next_quarter(clock.now())  # the limit itself: wait for the reset
    assert rate_429s(standin) == 0


async def test_concurrent_background_calls_do_not_overshoot(runtime, standin, clock):
    standin.config.read_limits = (20, 1000)
    athlete = await connect_directly(runtime, standin)
    token = await token_of(runtime, athlete)
    await runtime.strava.get_athlete(token)
    results = await asyncio.gather(*(runtime.strava.get_athlete(token) for _ in range(40)), return_exceptions=True)
    made = sum(1 for r in results if not isinstance(r, BaseException))
    assert all(isinstance(r, dict | BudgetExhausted) for r in results)
    assert made + 1 == 18  # exactly 90 % of 20: every call was counted before it was made
    assert rate_429s(standin) == 0


async def test_work_refused_with_429_waits_in_the_queue_and_runs_after_the_reset(aiohttp_client, runtime, standin,
                                                                                 clock):
    await subscribed_service(aiohttp_client, runtime)
    athlete = await connect_directly(runtime, standin)
    standin.fail_next("/api/v3/activities", 429)
    activity = await standin.create_activity_and_notify(athlete)
    await run_pending(runtime)

    [job] = [j for j in await all_jobs(runtime) if j.kind == "webhook_event"]
    assert (job.state, job.waiting_for, job.attempts) == ("queued", WAITING_RATE_LIMIT, 0)
    assert job.run_after == next_quarter(clock.now())
    assert "rate limit" in job.last_error
    report = RateLimitBody.of(await SupportDesk(runtime).webhooks.rate_limit_report()).to_json()
    assert report["queued_jobs"] == 1
    listed = [JobBody.of(j).to_json() for j in await SupportDesk(runtime).webhooks.list_jobs("queued")]
    assert listed[0]["waiting_for"] == "rate_limit" and listed[0]["run_after"] == "2026-11-27T14:15:00Z"

    clock.advance(minutes=5)
    assert await run_pending(runtime) == 0  # still the same window: nothing runs, nothing calls Strava
    clock.set(job.run_after)
    assert await run_pending(runtime) == 1
    [job] = [j for j in await all_jobs(runtime) if j.kind == "webhook_event"]
    assert job.state == "done"
    assert standin.count_calls("GET", f"/api/v3/activities/{activity}") == 2  # the 429 and the success
    assert (await SupportDesk(runtime).webhooks.rate_limit_report()).queued_jobs == 0


def test_cli_ratelimit_json_shows_queued_work(tmp_path, monkeypatch):
    """`fitglue ratelimit --json`, as an operator runs it (own process settings, system clock)."""
    from service.app.cli import main
    from tests.conftest import SECRET_KEY

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FITGLUE_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("FITGLUE_SECRET_KEY", SECRET_KEY)
    assert main(["db", "upgrade"]) == 0

    async def queue_one() -> None:
        from service.app.bootstrap import open_runtime
        from service.core.settings import load_settings
        from service.queue import enqueue

        rt = await open_runtime(load_settings())
        async with rt.sessions() as session, session.begin():
            await enqueue(session, "webhook_event", {"event_id": 1}, rt.clock.now(),
                          run_after=rt.clock.now() + timedelta(minutes=10))
        await rt.close()

    asyncio.run(queue_one())
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["ratelimit", "--json"]) == 0
    data = json.loads(out.getvalue())
    assert set(data) == {"overall", "read", "observed_at", "queued_jobs"}
    assert data["queued_jobs"] == 1
    for budget in ("overall", "read"):
        assert set(data[budget]) == {"15min", "daily"}
        assert set(data[budget]["15min"]) == {"limit", "usage", "resets_at"}
        assert data[budget]["15min"]["usage"] is None and data[budget]["daily"]["resets_at"].endswith("T00:00:00Z")


async def test_reserve_setting_is_honoured(runtime, standin, clock):
    runtime.settings = runtime.settings.replaced(rate_limit_reserve_pct=50)
    assert runtime.ledger is not None
    runtime.ledger.reserve_pct = 50
    standin.config.read_limits = (10, 1000)
    athlete = await connect_directly(runtime, standin)
    token = await token_of(runtime, athlete)
    made = 0
    with pytest.raises(BudgetExhausted):
        for _ in range(10):
            await runtime.strava.get_athlete(token)
            made += 1
    assert made == 5
