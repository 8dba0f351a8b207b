"""The queue worker: claims due jobs and runs them through handlers by kind.

- `RateLimited` (Strava's 429, or our own ledger refusing background work) → the job waits for
  the window reset with `waiting_for="rate_limit"`; the attempt does not count as a failure.
- `WaitUntil` (e.g. the per-athlete cap on checking unsigned events) → back to the queue until
  the given time; the attempt does not count either.
- A permanent failure (`queue.failures`: missing scope, dead grant, 404, our own bad request,
  `PermanentJobError`) → parked as failed at once. A transient one → exponential backoff, parked as
  failed after FITGLUE_JOB_MAX_ATTEMPTS. Either way the reason is kept for `fitglue jobs`.
- New work is taken within `poll_interval` (0.5 s), or at once when `wake()` is called (the
  webhook endpoint does so in the same process).
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
from datetime import datetime, timedelta
from typing import Any

from service.core.runtime import Runtime
from service.queue import store
from service.queue.failures import (
    PermanentJobError,
    WaitUntil,
    describe_error,
    failure_reason,
    is_permanent,
)
from service.queue.store import ClaimedJob
from service.ratelimit.windows import next_quarter
from service.strava import RateLimited

log = logging.getLogger(__name__)

Handler = Callable[[Runtime, ClaimedJob], Awaitable[object]]
FINISHED = "fitglue_jobs_finished_total"
BUSY_PAUSE_S = 0.1


class Worker:
    def __init__(self, rt: Runtime, handlers: Mapping[str, Handler], *, concurrency: int | None = None,
                 poll_interval: float = 0.5, worker_id: str | None = None,
                 on_parked: Callable[[Runtime, ClaimedJob, str], Awaitable[None]] | None = None,
                 yield_to: Callable[[], bool] | None = None) -> None:
        self.rt = rt
        self.handlers = dict(handlers)
        self.on_parked = on_parked
        # While this says the process is busy answering Strava (a burst of webhook POSTs), run one
        # job at a time with a pause between claims: acknowledging within Strava's 2 s matters
        # more than processing at once, and the backlog drains as soon as the burst ends.
        self.yield_to = yield_to
        self.concurrency = concurrency or rt.settings.worker_concurrency
        self.poll_interval = poll_interval
        self.worker_id = worker_id or f"{os.getpid()}-{secrets.token_hex(4)}"
        # A claim lasts one lease and is renewed every third of it while the job runs, so a job
        # whose process died is taken up again about one lease later.
        self.lease = timedelta(seconds=rt.settings.job_lease_s)
        self._wake = asyncio.Event()
        self._stopping = False
        self._loop_task: asyncio.Task[None] | None = None
        self._running: dict[asyncio.Task[None], ClaimedJob] = {}
        # Set when a job had to wait for the rate-limit window: until then, claiming a full batch
        # would only defer every job again (costly with a large backlog), so claim one at a time.
        self._budget_closed_until: datetime | None = None
        # Jobs put back to wait, counted per (what for, until when) and logged as one line per group
        # once the due jobs are through: a window change can defer hundreds of them at once.
        self._deferred: dict[tuple[str, datetime], tuple[int, str]] = {}

    def wake(self) -> None:
        self._wake.set()

    # ---- driving it directly (tests, one-shot commands) ----------------------------------------

    def budget_closed(self) -> bool:
        until = self._budget_closed_until
        if until is not None and self.rt.clock.now() >= until:
            self._budget_closed_until = until = None
        return until is not None

    async def run_pending(self, max_rounds: int = 1000) -> int:
        """Run every job due now (and what those enqueue), until none is left or the rate-limit
        budget closes for background work; how many ran."""
        ran = 0
        for _ in range(max_rounds):
            if self.budget_closed():
                break
            jobs = await store.claim(self.rt.write, self.rt.clock.now(), self.worker_id, self.concurrency,
                                     self.lease)
            if not jobs:
                break
            await asyncio.gather(*(self._run(job) for job in jobs))
            ran += len(jobs)
        self._log_deferred()
        return ran

    # ---- as a background loop ------------------------------------------------------------------

    def start(self) -> None:
        self._loop_task = asyncio.ensure_future(self._loop())

    async def stop(self, grace_s: float = 10.0) -> None:
        self._stopping = True
        self._wake.set()
        if self._loop_task is not None:
            await self._loop_task
        if self._running:
            _done, pending = await asyncio.wait(list(self._running), timeout=grace_s)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        renewed = loop.time()
        while not self._stopping:
            # Cleared before claiming, so a wake() during the claim is not lost.
            self._wake.clear()
            if loop.time() - renewed >= self.lease.total_seconds() / 3:
                renewed = loop.time()
                await self._renew()
            busy = self.yield_to is not None and self.yield_to()
            limit = 1 if busy or self.budget_closed() else self.concurrency
            free = limit - len(self._running)
            if free > 0:
                try:
                    claimed = await store.claim(self.rt.write, self.rt.clock.now(), self.worker_id, free,
                                                self.lease)
                except Exception:
                    log.warning("could not claim jobs; trying again shortly", exc_info=True)
                    claimed = []
                for job in claimed:
                    task = asyncio.ensure_future(self._run(job))
                    self._running[task] = job
                    task.add_done_callback(self._finished)
                if claimed and len(claimed) == free and limit == self.concurrency:
                    continue  # every slot filled: more may be due as soon as one frees
                if not claimed:
                    self._log_deferred()
            if limit < self.concurrency:
                # Busy answering Strava: leave the event loop to the requests between jobs.
                await asyncio.sleep(BUSY_PAUSE_S)
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_interval)

    async def _renew(self) -> None:
        try:
            await store.renew_leases(self.rt.write, self.worker_id, [j.id for j in self._running.values()],
                                     self.rt.clock.now(), self.lease)
        except Exception:
            log.warning("could not renew job leases", exc_info=True)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.pop(task, None)
        self._wake.set()

    async def _run(self, job: ClaimedJob) -> None:
        rt = self.rt
        handler = self.handlers.get(job.kind)
        try:
            if handler is None:
                raise PermanentJobError(f"no handler for job kind {job.kind!r}")
            if job.attempts > rt.settings.job_max_attempts:
                raise PermanentJobError("its worker stopped without finishing it too many times")
            outcome = await handler(rt, job)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await asyncio.shield(store.release(rt.write, job.id, self.worker_id, rt.clock.now()))
            raise
        except RateLimited as exc:
            resets_at = getattr(exc, "resets_at", None)
            if resets_at is None and rt.ledger is not None:
                with contextlib.suppress(Exception):
                    resets_at = await rt.ledger.background_resumes_at()
            resets_at = resets_at or next_quarter(rt.clock.now())
            if self._budget_closed_until is None or resets_at > self._budget_closed_until:
                self._budget_closed_until = resets_at
            await self._settle_safely(store.defer_for_rate_limit(
                rt.write, job.id, self.worker_id, rt.clock.now(), resets_at, describe_error(exc)))
            rt.metrics.inc(FINISHED, "rate_limited")
            self._note_deferred(store.WAITING_RATE_LIMIT, resets_at, "the rate-limit window resets then")
        except WaitUntil as wait:
            await self._settle_safely(store.defer(rt.write, job.id, self.worker_id, rt.clock.now(), wait.until,
                                                  wait.waiting_for, wait.reason))
            rt.metrics.inc(FINISHED, "deferred")
            self._note_deferred(wait.waiting_for, wait.until, wait.reason)
        except Exception as exc:
            permanent = is_permanent(exc)
            reason = failure_reason(exc, job.attempts, rt.settings.job_max_attempts)
            state = await self._settle_safely(store.retry_or_park(
                rt.write, job, self.worker_id, rt.clock.now(), reason, rt.settings.job_max_attempts,
                permanent=permanent))
            rt.metrics.inc(FINISHED, "failed" if state == store.FAILED else "retry")
            if state == store.FAILED:
                # A permanent failure is an expected answer (INFO); giving up on a transient one is not.
                log.log(logging.INFO if permanent else logging.WARNING, "job %s (%s) parked as failed: %s",
                        job.id, job.kind, reason)
                if self.on_parked is not None:
                    await self._settle_safely(self.on_parked(rt, job, reason))
            else:
                log.info("job %s (%s) failed (attempt %s), will retry: %s", job.id, job.kind, job.attempts,
                         describe_error(exc))
        else:
            if outcome is not store.SETTLED:
                await self._settle_safely(store.mark_done(rt.write, job.id, self.worker_id, rt.clock.now()))
            rt.metrics.inc(FINISHED, "done")

    def _note_deferred(self, waiting_for: str, until: datetime, reason: str) -> None:
        count, _reason = self._deferred.get((waiting_for, until), (0, reason))
        self._deferred[(waiting_for, until)] = (count + 1, reason)

    def _log_deferred(self) -> None:
        """One INFO line per (what for, until when) with how many jobs were put back to wait."""
        deferred, self._deferred = self._deferred, {}
        for (waiting_for, until), (count, reason) in sorted(deferred.items(), key=lambda item: item[0][1]):
            log.info("%d job(s) wait until %s (%s): %s", count, until, waiting_for, reason)

    async def _settle_safely(self, settle: Awaitable[Any]) -> Any:
        # If even this write fails, the lease runs out and the job is simply run again.
        try:
            return await settle
        except Exception:
            log.warning("could not record a job's outcome; it will run again after its lease", exc_info=True)
            return None
