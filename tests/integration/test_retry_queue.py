"""The persisted retry queue: backoff, parking, retry, leases of dead workers, clean shutdown, retention."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
from datetime import timedelta

import pytest

from service.background.job_handlers import make_worker, run_pending
from service.background.retention import sweep
from service.background.worker import Worker
from service.desk.api_models import JobBody, RetriedBody
from service.desk.support_desk import SupportDesk, SupportError
from service.queue import claim, enqueue
from service.queue import store as queue_store
from service.queue.store import BatchResult
from tests.webhook_support import (
    all_events,
    all_jobs,
    connect_directly,
    subscribed_service,
)


async def add_job(runtime, kind="webhook_event", payload=None, **kw) -> int:
    async with runtime.sessions() as session, session.begin():
        job_id = await enqueue(session, kind, payload or {"event_id": 0}, runtime.clock.now(), **kw)
    assert job_id is not None
    return job_id


async def job(runtime, job_id):
    return next(j for j in await all_jobs(runtime) if j.id == job_id)


async def test_transient_failures_back_off_then_park_and_retry_requeues(aiohttp_client, runtime, standin, clock):
    runtime.settings = runtime.settings.replaced(job_max_attempts=3)
    await subscribed_service(aiohttp_client, runtime)
    athlete = await connect_directly(runtime, standin)
    standin.fail_next("/api/v3/activities", 502, count=3)
    activity = await standin.create_activity_and_notify(athlete)
    [event_job] = [j for j in await all_jobs(runtime) if j.kind == "webhook_event"]

    await run_pending(runtime)
    first = await job(runtime, event_job.id)
    assert (first.state, first.attempts, first.waiting_for) == ("queued", 1, "retry")
    assert first.run_after == clock.now() + timedelta(seconds=30) and "502" in first.last_error
    assert await run_pending(runtime) == 0  # not before its backoff
    clock.advance(seconds=30)
    await run_pending(runtime)
    assert (await job(runtime, event_job.id)).run_after == clock.now() + timedelta(seconds=60)
    clock.advance(seconds=60)
    await run_pending(runtime)
    parked = await job(runtime, event_job.id)
    assert (parked.state, parked.attempts) == ("failed", 3) and "502" in parked.last_error
    assert [e.state for e in await all_events(runtime)] == ["failed"]
    failed = [JobBody.of(j).to_json() for j in await SupportDesk(runtime).webhooks.list_jobs("failed")]
    assert failed[0]["id"] == event_job.id and "502" in failed[0]["last_error"]

    retried = await SupportDesk(runtime).webhooks.retry_job(event_job.id, "test")
    assert (retried.state, retried.attempts, retried.run_after) == ("queued", 0, clock.now())
    await run_pending(runtime)
    assert (await job(runtime, event_job.id)).state == "done"
    assert [e.state for e in await all_events(runtime)] == ["processed"]
    assert standin.count_calls("GET", f"/api/v3/activities/{activity}") == 4


async def test_retry_refuses_unknown_and_unfinished_jobs(runtime):
    desk = SupportDesk(runtime)
    with pytest.raises(SupportError) as missing:
        await desk.webhooks.retry_job(999, "test")
    assert missing.value.code == "not_found"
    job_id = await add_job(runtime)
    await claim(runtime.write, runtime.clock.now(), "w", 1)
    with pytest.raises(SupportError) as running:
        await desk.webhooks.retry_job(job_id, "test")
    assert running.value.code == "not_retryable"
    with pytest.raises(SupportError) as bad:
        await desk.webhooks.list_jobs("parked")
    assert bad.value.exit_code == 2


async def test_retry_failed_jobs_requeues_every_parked_job(runtime):
    ids = [await add_job(runtime, kind="no_such_kind", payload={"n": i}) for i in range(3)]
    await run_pending(runtime)  # unknown kinds are parked at once
    assert [(await job(runtime, i)).state for i in ids] == ["failed"] * 3
    result = await SupportDesk(runtime).webhooks.retry_failed_jobs("test")
    assert RetriedBody.of(result).to_json() == {"retried": 3, "job_ids": ids}
    assert {(await job(runtime, i)).state for i in ids} == {"queued"}


async def test_a_job_claimed_by_a_dead_worker_is_picked_up_after_its_lease(runtime, clock):
    ran: list[int] = []

    async def handler(rt, claimed):
        ran.append(claimed.id)

    job_id = await add_job(runtime, kind="probe")
    [taken] = await claim(runtime.write, clock.now(), "worker-that-dies", 1)
    assert taken.id == job_id
    worker = Worker(runtime, {"probe": handler})
    assert await worker.run_pending() == 0  # leased: nobody else takes it
    clock.advance(runtime.settings.job_lease_s + 1)
    assert await worker.run_pending() == 1
    assert ran == [job_id] and (await job(runtime, job_id)).state == "done"


async def test_a_running_job_keeps_its_claim_by_renewing_the_lease(runtime, clock):
    runtime.settings = runtime.settings.replaced(job_lease_s=3)
    started, release = asyncio.Event(), asyncio.Event()

    async def slow(rt, claimed):
        started.set()
        await release.wait()

    job_id = await add_job(runtime, kind="slow")
    worker = Worker(runtime, {"slow": slow}, poll_interval=0.05)
    worker.start()
    try:
        await asyncio.wait_for(started.wait(), 2)
        for _ in range(3):  # well past the original lease on the injected clock
            clock.advance(2)
            await asyncio.sleep(1.1)  # the heartbeat runs every third of a lease (1 s here)
            assert await claim(runtime.write, clock.now(), "other", 5) == []
    finally:
        release.set()
        await worker.stop()
    assert (await job(runtime, job_id)).state == "done"


async def test_claims_never_hand_one_job_to_two_workers(runtime):
    ids = {await add_job(runtime, payload={"n": i}) for i in range(30)}
    now = runtime.clock.now()
    batches = await asyncio.gather(*(claim(runtime.write, now, f"w{i}", 4) for i in range(10)))
    claimed = [j.id for batch in batches for j in batch]
    assert len(claimed) == len(set(claimed)) == 30 and set(claimed) == ids
    assert all(len(batch) <= 4 for batch in batches)


async def test_a_claim_takes_at_most_its_limit(runtime):
    """On PostgreSQL a plain `IN (SELECT ... LIMIT n FOR UPDATE SKIP LOCKED)` could be rescanned
    per row and hand one claim every due job (12 for a limit of 8), so neither the batch size nor
    the one job at a time while the rate-limit window is closed held."""
    for i in range(12):
        await add_job(runtime, payload={"n": i})
    now = runtime.clock.now()
    assert [len(await claim(runtime.write, now, "w", n)) for n in (8, 1, 8)] == [8, 1, 3]


async def test_priority_orders_claims(runtime):
    low = await add_job(runtime, payload={"n": 1}, priority=50)
    high = await add_job(runtime, payload={"n": 2}, priority=0)
    [first] = await claim(runtime.write, runtime.clock.now(), "w", 1)
    assert first.id == high and low != high


async def test_dedupe_key_keeps_one_job(runtime):
    async with runtime.sessions() as session, session.begin():
        first = await enqueue(session, "k", {}, runtime.clock.now(), dedupe_key="same")
        second = await enqueue(session, "k", {}, runtime.clock.now(), dedupe_key="same")
    assert first is not None and second is None


async def test_stop_releases_jobs_still_running(runtime):
    started = asyncio.Event()

    async def slow(rt, claimed):
        started.set()
        await asyncio.sleep(30)

    job_id = await add_job(runtime, kind="slow")
    worker = Worker(runtime, {"slow": slow}, poll_interval=0.05)
    worker.start()
    await asyncio.wait_for(started.wait(), 2)
    await worker.stop(grace_s=0.1)
    released = await job(runtime, job_id)
    assert (released.state, released.attempts, released.claimed_by) == ("queued", 0, None)


async def test_worker_loop_runs_work_that_becomes_due(runtime):
    done = asyncio.Event()

    async def handler(rt, claimed):
        done.set()

    worker = Worker(runtime, {"probe": handler}, poll_interval=0.05)
    worker.start()
    try:
        await add_job(runtime, kind="probe")
        await asyncio.wait_for(done.wait(), 1.0)
    finally:
        await worker.stop()


async def test_retention_prunes_old_done_jobs_and_settled_events(aiohttp_client, runtime, standin, clock):
    await subscribed_service(aiohttp_client, runtime)
    await standin.push_event(standin.event("create", "activity", 1, standin.add_athlete(), {}))
    await make_worker(runtime).run_pending()
    failed = await add_job(runtime, kind="no_such_kind")
    await run_pending(runtime)
    clock.advance(days=runtime.settings.retention_days - 1)
    assert await sweep(runtime) == {}
    clock.advance(days=2)
    assert await sweep(runtime) == {"jobs": 1, "webhook_events": 1}
    assert [j.id for j in await all_jobs(runtime)] == [failed]  # parked work stays visible


def test_cli_jobs_list_and_retry(tmp_path, monkeypatch):
    from service.app.cli import main
    from tests.conftest import SECRET_KEY

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FITGLUE_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("FITGLUE_SECRET_KEY", SECRET_KEY)
    assert main(["db", "upgrade"]) == 0

    async def park_one() -> int:
        from service.app.bootstrap import open_runtime
        from service.core.settings import load_settings

        rt = await open_runtime(load_settings())
        try:
            job_id = await add_job(rt, kind="no_such_kind")
            await run_pending(rt)
            return job_id
        finally:
            await rt.close()

    job_id = asyncio.run(park_one())

    def run(*argv: str) -> tuple[int, str]:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = main(list(argv))
        return code, out.getvalue()

    code, out = run("jobs", "--state", "failed", "--json")
    assert code == 0 and [j["id"] for j in json.loads(out)["jobs"]] == [job_id]
    assert "no handler" in json.loads(out)["jobs"][0]["last_error"]
    code, out = run("jobs", "retry", str(job_id), "--json")
    assert code == 0 and json.loads(out)["state"] == "queued"
    code, out = run("jobs", "retry", "12345", "--json")
    assert code == 1 and json.loads(out)["error"] == "not_found"
    code, out = run("jobs", "retry", "--json")
    assert code == 2
    code, out = run("jobs", "retry", "--failed", "--json")
    assert code == 0 and json.loads(out) == {"retried": 0, "job_ids": []}
    code, out = run("jobs")
    assert code == 0 and "no_such_kind" in out


def count_claims(monkeypatch) -> tuple[list[int], asyncio.Event]:
    """The sizes of the worker's claims that found jobs, and an event set at the first such claim."""
    claims: list[int] = []
    first = asyncio.Event()
    real_claim = queue_store.claim

    async def counted(*args, **kwargs):
        claimed = await real_claim(*args, **kwargs)
        if claimed:
            claims.append(len(claimed))
            first.set()
        return claimed

    monkeypatch.setattr(queue_store, "claim", counted)
    return claims, first


async def test_work_woken_in_quick_succession_is_claimed_in_one_batch(runtime, monkeypatch):
    """FITGLUE_WORKER_GATHER_MS: after a claim that found less than it could take, the next claim
    waits until the gather time has passed, so jobs stored one by one meanwhile are claimed together
    (on SQLite every claim is a write transaction holding the lock the intake needs)."""
    runtime.settings = runtime.settings.replaced(worker_gather_ms=600)
    claims, first_claim = count_claims(monkeypatch)
    ran: list[int] = []
    everything = asyncio.Event()

    async def handler(rt, claimed):
        ran.append(claimed.id)
        if len(ran) == 4:
            everything.set()

    worker = Worker(runtime, {"probe": handler}, poll_interval=30)  # no poll: only wake-ups claim
    worker.start()
    try:
        await add_job(runtime, kind="probe")
        worker.wake()
        await asyncio.wait_for(first_claim.wait(), 1)  # nothing was claimed before: the first wake-up claims at once
        for _ in range(3):  # each stored and announced on its own, as the intake does, with time
            await add_job(runtime, kind="probe")  # enough between them for a worker that did not
            worker.wake()  # gather to claim each alone (with FITGLUE_WORKER_GATHER_MS=0: [1, 1, 1, 1])
            await asyncio.sleep(0.05)
        await asyncio.wait_for(everything.wait(), 5)
    finally:
        await worker.stop()
    assert claims == [1, 3]  # the three stored within the gather time: one claim


async def test_a_backlog_is_claimed_without_gathering(runtime, monkeypatch):
    """A claim that took all it could says more may be due: when a batch finishes and makes room, the
    next claim comes at once, not FITGLUE_WORKER_GATHER_MS after the last (which capped the drain of
    cheap jobs at two claims per gather time)."""
    runtime.settings = runtime.settings.replaced(worker_gather_ms=1000)
    claims, _first = count_claims(monkeypatch)
    started: list[int] = []
    full, release, everything = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def batch(rt, claimed, gate):
        started.extend(job.id for job in claimed)
        if len(started) == 8:
            full.set()
        await release.wait()
        if len(started) == 16:
            everything.set()
        return BatchResult()  # (the jobs stay claimed: this test looks at the claims only)

    for _ in range(16):
        await add_job(runtime, kind="probe")
    # Batches of 4, capacity 2 x 4 = 8: two full claims fill it, and the loop waits for room.
    worker = Worker(runtime, {}, batch_handlers={"probe": batch}, poll_interval=30, batch_size=4, concurrency=1)
    worker.start()
    loop = asyncio.get_running_loop()
    try:
        await asyncio.wait_for(full.wait(), 5)
        released_at = loop.time()
        release.set()
        await asyncio.wait_for(everything.wait(), 5)
        drained_in = loop.time() - released_at
    finally:
        await worker.stop()
    assert claims == [4, 4, 4, 4]
    assert drained_in < 0.6  # with the gather after every wake-up: about 1 s


async def test_stop_ends_a_gather_wait_at_once(runtime, monkeypatch):
    """stop() during the gather wait returns without sitting out the rest of it, and the job that
    woke the worker is not claimed."""
    runtime.settings = runtime.settings.replaced(worker_gather_ms=1000)
    claims, first_claim = count_claims(monkeypatch)

    async def handler(rt, claimed):
        pass

    worker = Worker(runtime, {"probe": handler}, poll_interval=30)
    worker.start()
    loop = asyncio.get_running_loop()
    await add_job(runtime, kind="probe")
    worker.wake()
    await asyncio.wait_for(first_claim.wait(), 1)
    second = await add_job(runtime, kind="probe")
    worker.wake()
    await asyncio.sleep(0.1)  # the worker is in its gather wait now
    asked_at = loop.time()
    await worker.stop()
    assert loop.time() - asked_at < 0.5  # not the rest of the second
    assert claims == [1] and (await job(runtime, second)).state == "queued"


async def test_a_worker_holding_back_for_a_burst_still_claims_a_batch_at_a_time(runtime, monkeypatch):
    """While the intake says it is busy (`yield_to`), the worker pauses between claims, but each
    claim is still a batch: one job per pause fell behind a steady 500 events/s in one process."""
    runtime.settings = runtime.settings.replaced(worker_batch_size=8)
    claims, _first = count_claims(monkeypatch)
    everything = asyncio.Event()
    ran: list[int] = []

    async def handler(rt, claimed):
        ran.append(claimed.id)
        if len(ran) == 12:
            everything.set()

    for _ in range(12):
        await add_job(runtime, kind="probe")
    worker = Worker(runtime, {"probe": handler}, poll_interval=30, yield_to=lambda: True)
    worker.start()
    try:
        await asyncio.wait_for(everything.wait(), 5)
    finally:
        await worker.stop()
    # A batch, the pause, the rest (in more than one claim only if some of the first 8 were still
    # being marked done after the 100 ms pause); one job per pause before.
    assert claims[0] == 8 and sum(claims) == 12 and max(claims) <= 8


async def test_the_pause_between_claims_during_a_burst_is_a_setting(runtime, monkeypatch):
    """FITGLUE_WORKER_BUSY_PAUSE_MS: at 1000 ms the next claim waits the whole second (it was a fixed
    100 ms); at 0 the worker claims again at once."""
    runtime.settings = runtime.settings.replaced(worker_batch_size=8, worker_busy_pause_ms=1000)
    claims, first = count_claims(monkeypatch)
    for _ in range(12):
        await add_job(runtime, kind="probe")

    async def handler(rt, claimed):
        return None

    worker = Worker(runtime, {"probe": handler}, poll_interval=30, yield_to=lambda: True)
    worker.start()
    try:
        await asyncio.wait_for(first.wait(), 5)
        await asyncio.sleep(0.3)
        assert claims == [8]  # the rest waits for the pause
    finally:
        await worker.stop()
    runtime.settings = runtime.settings.replaced(worker_busy_pause_ms=0)
    worker = Worker(runtime, {"probe": handler}, poll_interval=30, yield_to=lambda: True)
    worker.start()
    try:
        for _ in range(100):
            if sum(claims) == 12:
                break
            await asyncio.sleep(0.01)
    finally:
        await worker.stop()
    assert sum(claims) == 12


async def test_no_pause_during_a_burst_does_not_spin_the_worker(runtime, monkeypatch):
    """FITGLUE_WORKER_BUSY_PAUSE_MS=0 ('no pause') with nothing to claim: the worker waits to be
    woken like any other time. It ran `sleep(0)` and claimed again in a loop, a write transaction
    after another for as long as the intake was busy (or the Strava budget closed), at full CPU."""
    runtime.settings = runtime.settings.replaced(worker_busy_pause_ms=0)
    tries = 0
    real_claim = queue_store.claim

    async def counted(*args, **kwargs):
        nonlocal tries
        tries += 1
        return await real_claim(*args, **kwargs)

    monkeypatch.setattr(queue_store, "claim", counted)
    worker = Worker(runtime, {"probe": lambda rt, claimed: asyncio.sleep(0)}, poll_interval=30,
                    yield_to=lambda: True)
    worker.start()
    try:
        await asyncio.sleep(0.5)
        assert tries <= 2, f"{tries} claims in 0.5 s with nothing to claim"
        await add_job(runtime, kind="probe")
        worker.wake()
        for _ in range(100):  # woken, it still claims at once
            if tries > 2:
                break
            await asyncio.sleep(0.01)
        assert tries > 2
    finally:
        await worker.stop()
