"""Work that cannot succeed is not retried (issue 9, kind 5).

Every failure of a queued job is permanent (missing scope, dead grant, 404, our own bad request:
settled as failed at once, the reason shown by `fitglue jobs` and the diagnosis) or transient
(timeouts, 5xx, 429: retried). Work known to fail in advance (no activity read) is not queued.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json

import pytest
from sqlalchemy import select

from service.background.job_handlers import run_pending
from service.connections.refresh import refresh_connection
from service.db.models import Job
from service.desk.api_models import JobBody
from service.desk.support_desk import SupportDesk
from service.queue import enqueue
from standin.faults import ATHLETE_TOKEN_INVALID, bad_request, scope_missing
from tests.webhook_support import (
    all_events,
    all_jobs,
    connect_directly,
    connection,
    subscribed_service,
)
from troubleshooting.vocabulary import RefreshErrorKind

LIST = "/api/v3/athlete/activities"
NO_READ = ["read", "activity:write", "profile:read_all"]


@pytest.fixture
async def client(aiohttp_client, runtime):
    return await subscribed_service(aiohttp_client, runtime)


async def jobs_of(runtime, kind: str) -> list[Job]:
    return [j for j in await all_jobs(runtime) if j.kind == kind]


async def test_webhook_repair_queues_no_catch_up_for_an_athlete_without_activity_read(client, runtime, standin):
    reader = await connect_directly(runtime, standin, "reader@example.com")
    await connect_directly(runtime, standin, "writer@example.com", granted=NO_READ)
    standin.add_activity(reader, name="Missed")
    report = await SupportDesk(runtime).webhooks.reregister_webhook("test")
    assert report.catch_up_queued == 1
    [job] = await jobs_of(runtime, "catch_up")
    assert job.payload and json.loads(job.payload)["connection_id"] == (await connection(runtime, reader)).id
    await run_pending(runtime)
    assert standin.count_calls("GET", LIST) == 2  # the reader's page and the empty one; nothing for the other
    assert [j.state for j in await all_jobs(runtime)] == ["done", "done"]


async def queue_catch_up_for(runtime, athlete: int, **payload) -> int:
    conn = await connection(runtime, athlete)
    async with runtime.sessions() as session, session.begin():
        job_id = await enqueue(session, "catch_up", {"connection_id": conn.id, "after": 0, "page": 1, **payload},
                               runtime.clock.now(), user_id=conn.user_id)
    assert job_id is not None
    return job_id


PERMANENT = [
    pytest.param(401, scope_missing("activity:read_permission"), "missing", id="missing-scope"),
    pytest.param(404, None, "not found", id="gone"),
    pytest.param(400, bad_request("Activity", "page"), "HTTP 400", id="our-bad-request"),
]


@pytest.mark.parametrize(("status", "body", "words"), PERMANENT)
async def test_a_permanent_failure_settles_at_once_with_its_reason(client, runtime, standin, status, body, words):
    athlete = await connect_directly(runtime, standin)
    job_id = await queue_catch_up_for(runtime, athlete)
    standin.fail_next(LIST, status, body, count=5)
    await run_pending(runtime)
    [job] = [j for j in await all_jobs(runtime) if j.id == job_id]
    assert (job.state, job.attempts, job.waiting_for) == ("failed", 1, None)
    assert job.last_error.startswith("permanent: ") and words in job.last_error
    assert standin.count_calls("GET", LIST) == 1  # one call, never repeated

    desk = SupportDesk(runtime)
    [shown] = [JobBody.of(j).to_json() for j in await desk.webhooks.list_jobs("failed")]  # what `fitglue jobs` prints
    assert shown["id"] == job_id and shown["last_error"] == job.last_error
    facts = (await desk.diagnose("alice@example.com")).facts
    assert facts["user_jobs_failed"] == 1 and facts["last_job_failure"] == job.last_error


@pytest.mark.parametrize(("status", "body"), [(500, None), (503, None), (429, None), (401, ATHLETE_TOKEN_INVALID)],
                         ids=["500", "503", "429", "token-not-accepted"])
async def test_a_transient_failure_is_retried(client, runtime, standin, status, body):
    athlete = await connect_directly(runtime, standin)
    job_id = await queue_catch_up_for(runtime, athlete)
    standin.fail_next(LIST, status, body)
    await run_pending(runtime)
    [job] = [j for j in await all_jobs(runtime) if j.id == job_id]
    assert job.state == "queued" and job.waiting_for in ("retry", "rate_limit")
    assert not (job.last_error or "").startswith("permanent")


async def test_an_access_token_strava_refused_is_refreshed_before_the_retry(client, runtime, standin, clock):
    athlete = await connect_directly(runtime, standin)
    job_id = await queue_catch_up_for(runtime, athlete)
    standin.fail_next(LIST, 401, ATHLETE_TOKEN_INVALID)
    await run_pending(runtime)
    assert (await connection(runtime, athlete)).expires_at == clock.now()  # no longer trusted
    refreshes = standin.count_calls("POST", "/oauth/token")
    clock.advance(seconds=30)
    await run_pending(runtime)
    assert standin.count_calls("POST", "/oauth/token") == refreshes + 1
    assert [j.state for j in await all_jobs(runtime) if j.id == job_id] == ["done"]


async def test_a_catch_up_for_a_dead_grant_fails_permanently_without_calling_strava(client, runtime, standin):
    athlete = await connect_directly(runtime, standin)
    job_id = await queue_catch_up_for(runtime, athlete)
    standin.state.revoke(athlete)
    assert (await refresh_connection(runtime, (await connection(runtime, athlete)).id, force=True)).error_kind \
        == RefreshErrorKind.GRANT_DEAD
    await run_pending(runtime)
    [job] = [j for j in await all_jobs(runtime) if j.id == job_id]
    assert job.state == "failed" and job.attempts == 1
    assert job.last_error.startswith("permanent: ") and "needs_reauth" in job.last_error
    assert standin.count_calls("GET", LIST) == 0


async def test_a_malformed_catch_up_payload_fails_permanently(runtime):
    async with runtime.sessions() as session, session.begin():
        await enqueue(session, "catch_up", {"page": "x"}, runtime.clock.now())
    await run_pending(runtime)
    [job] = await all_jobs(runtime)
    assert (job.state, job.attempts) == ("failed", 1) and job.last_error.startswith("permanent: ")


async def test_an_event_whose_check_strava_calls_malformed_is_not_retried(client, runtime, standin):
    athlete = await connect_directly(runtime, standin)
    standin.fail_next("/api/v3/activities", 400, bad_request("Activity", "id"), count=5)
    await standin.create_activity_and_notify(athlete)
    await run_pending(runtime)
    [job] = await jobs_of(runtime, "webhook_event")
    assert (job.state, job.attempts) == ("failed", 1) and job.last_error.startswith("permanent: ")
    [event] = await all_events(runtime)
    assert event.state == "failed" and event.error == job.last_error
    assert standin.count_calls("GET", "/api/v3/activities/") == 1


async def test_activity_events_of_an_athlete_without_activity_read_are_not_queued(client, runtime, standin):
    athlete = await connect_directly(runtime, standin, granted=NO_READ)
    for object_id in (11, 12):
        response = await client.post("/webhooks/strava", json=standin.event("create", "activity", object_id, athlete, {}))
        assert response.status == 200
    # A deauthorization still needs its check: it is queued.
    await client.post("/webhooks/strava", json=standin.event("update", "athlete", athlete, athlete,
                                                             {"authorized": "false"}))
    jobs = await all_jobs(runtime)
    events = await all_events(runtime)
    assert [e.object_type for e in events] == ["activity", "activity", "athlete"]
    assert [json.loads(j.payload)["event_id"] for j in jobs] == [events[2].id]
    for event in events[:2]:
        assert event.state == "ignored" and "activity read" in event.error and event.processed_at is not None
    await run_pending(runtime)
    assert standin.count_calls("GET", "/api/v3/activities") == 0


def test_cli_jobs_shows_why_a_job_failed_permanently(tmp_path, monkeypatch):
    from service.app.bootstrap import open_runtime
    from service.app.cli import main
    from service.core.settings import load_settings
    from tests.conftest import SECRET_KEY

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FITGLUE_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("FITGLUE_SECRET_KEY", SECRET_KEY)
    assert main(["db", "upgrade"]) == 0

    async def park_one() -> None:
        rt = await open_runtime(load_settings())
        try:
            async with rt.sessions() as session, session.begin():
                await enqueue(session, "catch_up", {}, rt.clock.now())
            await run_pending(rt)
        finally:
            await rt.close()

    asyncio.run(park_one())
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["jobs", "--state", "failed"]) == 0
    assert "permanent: the job's payload is not a catch-up request" in out.getvalue()


async def test_the_worker_parks_only_transient_failures_after_the_last_attempt(runtime):
    from service.background.worker import Worker

    async def flaky(rt, job):
        raise ConnectionResetError("peer went away")

    async with runtime.sessions() as session, session.begin():
        await enqueue(session, "flaky", {}, runtime.clock.now())
    runtime.settings = runtime.settings.replaced(job_max_attempts=1)
    await Worker(runtime, {"flaky": flaky}).run_pending()
    async with runtime.sessions() as session:
        job = (await session.execute(select(Job))).scalar_one()
    assert job.state == "failed" and job.last_error.startswith("gave up after 1 attempt: ConnectionResetError")
