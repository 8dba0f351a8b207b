"""SupportDesk operations on the push subscription, the rate-limit budget and the retry queue.

One of the small services `service.desk.support_desk.SupportDesk` is composed of, reached as
`desk.webhooks`. Operations that change something are audited.
"""

from __future__ import annotations

from dataclasses import dataclass

from service.core.audit_log import audited
from service.core.runtime import Runtime
from service.db.models import Job
from service.desk.boundary import raises_only_support_error
from service.desk.error_table import SupportError
from service.queue import STATES, store
from service.queue.views import JobView, list_jobs, waiting_count
from service.ratelimit.report import RateLimitReport, build_report
from service.strava import StravaError
from service.subscription.registration import (
    RegistrationReport,
    WebhookStatus,
    reregister,
    webhook_status,
)


@dataclass(frozen=True)
class RetryResult:
    job_ids: list[int]


@raises_only_support_error  # failures leave as SupportError only (service/desk/boundary.py)
class WebhookQueueOps:
    """The push subscription, the rate-limit budget and the retry queue, for one runtime."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    def _error(self, code: str, message: str) -> SupportError:
        return SupportError(code, message)

    async def webhook_status(self) -> WebhookStatus:
        """The live subscription at Strava plus what we know locally. Strava unreachable → SupportError."""
        try:
            return await webhook_status(self.rt)
        except StravaError as exc:
            raise self._error("strava_unavailable", f"could not look at the subscription: {exc.summary}") from None

    async def reregister_webhook(self, actor: str) -> RegistrationReport:
        """Check our callback, delete a subscription pointing elsewhere, create ours; queue a catch-up."""
        rt = self.rt
        async with audited(rt.sessions, rt.clock, actor, "reregister_webhook", None) as outcome:
            report = await reregister(rt, actor)
            outcome.result = report.outcome
            outcome.detail = report.error
            return report

    async def rate_limit_report(self) -> RateLimitReport:
        rt = self.rt
        assert rt.ledger is not None
        states = await rt.ledger.snapshot()
        async with rt.sessions() as session:
            queued = await waiting_count(session)
        return build_report(states, rt.clock.now(), queued)

    async def list_jobs(self, state: str | None = None, limit: int = 100) -> list[JobView]:
        if state is not None and state not in STATES:
            raise self._error("bad_state", f"unknown job state {state!r}; use one of {', '.join(STATES)}")
        async with self.rt.sessions() as session:
            return await list_jobs(session, state, limit)

    async def retry_job(self, job_id: int, actor: str) -> JobView:
        """Queue a failed (or waiting) job to run now with a fresh set of attempts."""
        rt = self.rt
        async with audited(rt.sessions, rt.clock, actor, "retry_job", f"job:{job_id}") as outcome:
            async with rt.write() as session:
                job = await session.get(Job, job_id)
                if job is None:
                    outcome.result = "not_found"
                    raise self._error("not_found", f"no job {job_id}")
                if job.state not in (store.FAILED, store.QUEUED):
                    outcome.result = "refused"
                    raise self._error("not_retryable", f"job {job_id} is {job.state}; only failed or queued "
                                      "jobs can be retried")
                await store.requeue(session, [job_id], rt.clock.now())
            async with rt.sessions() as session:
                refreshed = await session.get(Job, job_id)
                assert refreshed is not None
                return JobView.of(refreshed)

    async def retry_failed_jobs(self, actor: str) -> RetryResult:
        rt = self.rt
        async with audited(rt.sessions, rt.clock, actor, "retry_failed_jobs", None) as outcome:
            async with rt.write() as session:
                ids = await store.requeue(session, None, rt.clock.now())
            outcome.detail = f"{len(ids)} job(s) queued again"
            return RetryResult(ids)
