"""The queue worker: claims due jobs and runs them through handlers by kind.

- How a run that did not succeed is recorded (rate limits, waits, permanent and transient
  failures) is `job_outcomes`, the worker's base class.
- Kinds with a batch handler (webhook events) are claimed and run a batch at a time (up to
  FITGLUE_WORKER_BATCH_SIZE jobs): the handler reads and settles the whole batch together. Two
  batches may be in flight, so one settles while the other waits on Strava. Every Strava call, and
  every single job, passes the worker's `gate`: at most FITGLUE_WORKER_CONCURRENCY at once.
- New work is taken within `poll_interval` (0.5 s), or soon after `wake()` is called (the webhook
  endpoint does so in the same process; `wake()` is safe to call from another thread). After a
  claim that found fewer jobs than it could take (nothing more was due), the next claim comes
  FITGLUE_WORKER_GATHER_MS (50 ms) after it at the earliest, so that what arrives meanwhile is
  claimed in one batch; after a full claim (a backlog), a wake-up claims at once.
- `stop()` takes no new jobs, lets running ones finish for a grace period, then cancels and
  releases what is left, so nothing waits for a lease to run out after a clean shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta

from service.background.job_outcomes import FINISHED, TOO_MANY_STOPS, JobOutcomes, OnParked
from service.core.runtime import Runtime
from service.core.wind_down import wind_down
from service.queue import store
from service.queue.failures import PermanentJobError
from service.queue.store import BatchResult, ClaimedJob

log = logging.getLogger(__name__)

Handler = Callable[[Runtime, ClaimedJob], Awaitable[object]]
BatchHandler = Callable[[Runtime, list[ClaimedJob], asyncio.Semaphore], Awaitable[BatchResult]]


class Worker(JobOutcomes):
    def __init__(self, rt: Runtime, handlers: Mapping[str, Handler], *, concurrency: int | None = None,
                 poll_interval: float = 0.5, worker_id: str | None = None,
                 on_parked: OnParked | None = None,
                 yield_to: Callable[[], bool] | None = None,
                 batch_handlers: Mapping[str, BatchHandler] | None = None, batch_size: int | None = None) -> None:
        super().__init__()
        self.rt = rt
        self.handlers = dict(handlers)
        self.batch_handlers = dict(batch_handlers or {})
        self.on_parked = on_parked
        # While this says the process is busy answering Strava (a burst of webhook POSTs), claim one
        # batch at a time with a pause between claims: acknowledging within Strava's 2 s matters more
        # than processing at once, and the backlog drains at full speed once the burst ends. (One
        # job per pause, as before, fell behind a steady 500 events/s: two requests overlapping
        # make a "burst", so the one-process worker was held back most of the time.)
        self.yield_to = yield_to
        self.concurrency = concurrency or rt.settings.worker_concurrency
        self.batch_size = max(batch_size or rt.settings.worker_batch_size, 1)
        # Two batches in flight: one settles (or claims) while the other waits on Strava.
        self.capacity = 2 * max(self.batch_size, self.concurrency)
        self.gate = asyncio.Semaphore(self.concurrency)
        self._loop: asyncio.AbstractEventLoop | None = None
        self.poll_interval = poll_interval
        self.worker_id = worker_id or f"{os.getpid()}-{secrets.token_hex(4)}"
        # A claim lasts one lease and is renewed every third of it while the job runs, so a job
        # whose process died is taken up again about one lease later.
        self.lease = timedelta(seconds=rt.settings.job_lease_s)
        self._wake = asyncio.Event()
        self._stopping = False
        self._stopped = asyncio.Event()  # set by stop(): ends a gather wait at once
        self._loop_task: asyncio.Task[None] | None = None
        self._running: dict[asyncio.Task[None], list[ClaimedJob]] = {}

    def wake(self) -> None:
        loop = self._loop
        try:
            here = asyncio.get_running_loop()
        except RuntimeError:
            here = None
        if loop is not None and here is not loop:
            # From the web's thread (one-process serve), once per wake-up the worker has not seen
            # yet: the intake wakes it after every batch it stores, hundreds of times a second.
            if not self._wake.is_set():
                loop.call_soon_threadsafe(self._wake.set)
        else:
            self._wake.set()

    # ---- driving it directly (tests, one-shot commands) ----------------------------------------

    async def run_pending(self, max_rounds: int = 1000) -> int:
        """Run every job due now (and what those enqueue), until none is left or the rate-limit
        budget closes for background work; how many ran."""
        ran = 0
        for _ in range(max_rounds):
            if self.budget_closed():
                break
            jobs = await store.claim(self.rt.write, self.rt.clock.now(), self.worker_id, self.batch_size,
                                     self.lease)
            if not jobs:
                break
            await asyncio.gather(*(run for run, _jobs in self._dispatch(jobs)))
            ran += len(jobs)
        self._log_deferred()
        return ran

    # ---- as a background loop ------------------------------------------------------------------

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop_task = asyncio.ensure_future(self._work())

    async def stop(self, grace_s: float | None = None) -> None:
        """Take no new jobs; let those in flight finish within `grace_s` seconds (default
        FITGLUE_SHUTDOWN_GRACE_S), then cancel them (their jobs are released or their leases expire)."""
        self._stopping = True
        self._stopped.set()
        self._wake.set()
        if self._loop_task is not None:
            await self._loop_task
        await wind_down(list(self._running), self.rt.settings.shutdown_grace_s if grace_s is None else grace_s,
                        "queue job run(s)")

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        renewed = loop.time()
        # When the last claim began (one that raised counts too: the gather is then its back-off),
        # and whether it found fewer jobs than it could take. Nothing claimed yet: claim at once.
        claimed_at, short = float("-inf"), False
        while not self._stopping:
            # Cleared before claiming, so a wake() during the claim is not lost.
            self._wake.clear()
            if loop.time() - renewed >= self.lease.total_seconds() / 3:
                renewed = loop.time()
                await self._renew()
            busy = self.yield_to is not None and self.yield_to()
            limit = 1 if self.budget_closed() else self.batch_size if busy else self.capacity
            free = min(limit - sum(len(jobs) for jobs in self._running.values()), self.batch_size)
            if free > 0:
                claimed_at = loop.time()
                try:
                    claimed = await store.claim(self.rt.write, self.rt.clock.now(), self.worker_id, free,
                                                self.lease)
                except Exception:
                    log.warning("could not claim jobs; trying again shortly", exc_info=True)
                    claimed = []
                short = len(claimed) < free
                for run, jobs in self._dispatch(claimed):
                    task = asyncio.ensure_future(run)
                    self._running[task] = jobs
                    task.add_done_callback(self._finished)
                if claimed and len(claimed) == free and limit == self.capacity:
                    continue  # a full batch: more may be due at once
                if not claimed:
                    self._log_deferred()
            pause_s = self.rt.settings.worker_busy_pause_ms / 1000
            if limit < self.capacity and pause_s > 0:
                # Busy answering Strava: leave the event loop (and, on SQLite, the write lock) to the
                # requests between claims (FITGLUE_WORKER_BUSY_PAUSE_MS). At 0 the wait below applies,
                # as when not busy: `sleep(0)` and claim again made a loop of write transactions.
                await asyncio.sleep(pause_s)
                continue
            try:
                await asyncio.wait_for(self._wake.wait(), self.poll_interval)
            except TimeoutError:
                continue
            # Woken (events stored, a batch finished). If the last claim found less than it could
            # take, the next comes FITGLUE_WORKER_GATHER_MS after it at the earliest, so what arrives
            # meanwhile joins it. Every claim and every settle is a write transaction, and on SQLite
            # each holds the one write lock the intake needs: at 500 events/s a worker claiming at
            # once took ~3 events at a time, 300 transactions/s holding the lock a quarter of the time
            # (bench/README.md). After a full claim (a backlog; the loop came here only because its
            # capacity was taken) a finished batch makes room, and the next is claimed at once.
            gap = self.rt.settings.worker_gather_ms / 1000 - (loop.time() - claimed_at)
            if short and gap > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopped.wait(), gap)

    async def _renew(self) -> None:
        try:
            await store.renew_leases(self.rt.write, self.worker_id, [j.id for jobs in self._running.values() for j in jobs],
                                     self.rt.clock.now(), self.lease)
        except Exception:
            log.warning("could not renew job leases", exc_info=True)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.pop(task, None)
        self._wake.set()

    def _dispatch(self, jobs: list[ClaimedJob]) -> list[tuple[Awaitable[None], list[ClaimedJob]]]:
        """The runs for claimed jobs: one per batch kind's jobs, one per other job."""
        runs: list[tuple[Awaitable[None], list[ClaimedJob]]] = []
        by_kind: dict[str, list[ClaimedJob]] = {}
        for job in jobs:
            if job.kind in self.batch_handlers:
                by_kind.setdefault(job.kind, []).append(job)
            else:
                runs.append((self._run(job), [job]))
        runs.extend((self._run_batch(kind, batch), batch) for kind, batch in by_kind.items())
        return runs

    async def _run(self, job: ClaimedJob) -> None:
        rt = self.rt
        handler = self.handlers.get(job.kind)
        try:
            if handler is None:
                raise PermanentJobError(f"no handler for job kind {job.kind!r}")
            if job.attempts > rt.settings.job_max_attempts:
                raise PermanentJobError(TOO_MANY_STOPS)
            async with self.gate:
                outcome = await handler(rt, job)
        except asyncio.CancelledError:
            await self._release([job])
            raise
        except Exception as exc:
            await self.record_failure(job, exc)
        else:
            if outcome is not store.SETTLED:
                await self._settle_safely(store.mark_done(rt.write, job.id, self.worker_id, rt.clock.now()))
            rt.metrics.inc(FINISHED, "done")

    async def _run_batch(self, kind: str, jobs: list[ClaimedJob]) -> None:
        """Run a batch handler; its failures and released jobs are recorded one by one, as above."""
        rt = self.rt
        worn = [job for job in jobs if job.attempts > rt.settings.job_max_attempts]
        for job in worn:
            await self.record_failure(job, PermanentJobError(TOO_MANY_STOPS))
        runnable = [job for job in jobs if job not in worn]
        try:
            result = await self.batch_handlers[kind](rt, runnable, self.gate) if runnable else BatchResult()
        except asyncio.CancelledError:
            await self._release(runnable)
            raise
        except Exception:
            log.warning("a batch of %d %s job(s) could not be finished; they run again after their lease",
                        len(runnable), kind, exc_info=True)
            return
        released = {job.id for job in result.released}
        if result.released:
            await self._release(result.released)
        for job in runnable:
            failure = result.failures.get(job.id)
            if failure is not None:
                await self.record_failure(job, failure)
            elif job.id not in released:
                rt.metrics.inc(FINISHED, "done")

    async def _release(self, jobs: list[ClaimedJob]) -> None:
        """Hand claimed jobs back untouched (shutdown, or a batch that left them for the next)."""
        for job in jobs:
            with contextlib.suppress(Exception):
                await asyncio.shield(store.release(self.rt.write, job.id, self.worker_id, self.rt.clock.now()))
