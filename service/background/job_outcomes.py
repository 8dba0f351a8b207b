"""How the queue worker records a run that did not simply succeed (the worker's base class).

- `RateLimited` (Strava's 429, or our own ledger refusing background work) → the job waits for the
  window reset with `waiting_for="rate_limit"`, and the worker claims one job at a time until then.
- `WaitUntil` → back to the queue until the given time. Neither counts as a failed attempt.
- Anything else → `queue.failures` says permanent (parked at once) or transient (backoff, parked
  after FITGLUE_JOB_MAX_ATTEMPTS); a parked job's `on_parked` hook runs (its event shows it).
Deferred jobs are logged as one line per (what for, until when), not one per job.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from service.core.runtime import Runtime
from service.queue import store
from service.queue.failures import WaitUntil, describe_error, failure_reason, is_permanent
from service.queue.store import ClaimedJob
from service.ratelimit.windows import next_quarter
from service.strava import RateLimited

# The worker's own logger: these lines are the worker's, wherever the code sits.
log = logging.getLogger("service.background.worker")

FINISHED = "fitglue_jobs_finished_total"
TOO_MANY_STOPS = "its worker stopped without finishing it too many times"
OnParked = Callable[[Runtime, ClaimedJob, str], Awaitable[None]]


class JobOutcomes:
    rt: Runtime
    worker_id: str
    on_parked: OnParked | None

    def __init__(self) -> None:
        # Set when a job had to wait for the rate-limit window: until then, claiming a full batch
        # would only defer every job again (costly with a large backlog), so claim one at a time.
        self._budget_closed_until: datetime | None = None
        # Jobs put back to wait, counted per (what for, until when) and logged as one line per group
        # once the due jobs are through: a window change can defer hundreds of them at once.
        self._deferred: dict[tuple[str, datetime], tuple[int, str]] = {}

    def budget_closed(self) -> bool:
        until = self._budget_closed_until
        if until is not None and self.rt.clock.now() >= until:
            self._budget_closed_until = until = None
        return until is not None

    async def record_failure(self, job: ClaimedJob, exc: BaseException) -> None:
        if isinstance(exc, RateLimited):
            await self._wait_for_budget(job, exc)
        elif isinstance(exc, WaitUntil):
            rt = self.rt
            await self._settle_safely(store.defer(rt.write, job.id, self.worker_id, rt.clock.now(), exc.until,
                                                  exc.waiting_for, exc.reason))
            rt.metrics.inc(FINISHED, "deferred")
            self._note_deferred(exc.waiting_for, exc.until, exc.reason)
        else:
            await self._retry_or_park(job, exc)

    async def _wait_for_budget(self, job: ClaimedJob, exc: RateLimited) -> None:
        rt = self.rt
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

    async def _retry_or_park(self, job: ClaimedJob, exc: BaseException) -> None:
        rt = self.rt
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
