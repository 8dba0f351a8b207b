"""Wiring the queue worker into the service: the job handlers by kind and the worker's lifetime as an
aiohttp cleanup context, with the delivery of outbound events beside it (service/background/outbound.py).
(The retention sweep is service/background/retention.py.)"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from aiohttp import web

from service.background.outbound import OutboundDelivery
from service.background.webhooks import catchup, processing
from service.background.worker import Handler, Worker
from service.core.runtime import Runtime
from service.queue import ClaimedJob
from service.queue.catch_up import JOB_KIND as CATCH_UP_JOB
from service.subscription.state import JOB_KIND as EVENT_JOB


def job_handlers() -> dict[str, Handler]:
    return {EVENT_JOB: processing.process_event_job, CATCH_UP_JOB: catchup.catch_up_job}


def make_worker(rt: Runtime, *, concurrency: int | None = None, poll_interval: float = 0.5,
                worker_id: str | None = None, yield_to: Callable[[], bool] | None = None) -> Worker:
    return Worker(rt, job_handlers(), concurrency=concurrency, poll_interval=poll_interval, worker_id=worker_id,
                  on_parked=_on_parked, yield_to=yield_to)


async def _on_parked(rt: Runtime, job: ClaimedJob, error: str) -> None:
    if job.kind == EVENT_JOB:
        await processing.mark_event_failed(rt, job, error)


async def run_pending(rt: Runtime) -> int:
    """Run every due job now, in this process (tests and one-shot use); how many ran."""
    return await make_worker(rt).run_pending()


async def deliver_pending(rt: Runtime) -> int:
    """Send every outbound event due now, in this process (tests and one-shot use); attempts made."""
    return await OutboundDelivery(rt).run_pending()


def worker_context(rt: Runtime, wake_on: Callable[[Callable[[], None]], None] | None = None,
                   yield_to: Callable[[], bool] | None = None) -> Callable[[web.Application], AsyncIterator[None]]:
    """Start the worker (and the outbound-event delivery) with the app; on shutdown, finish or release
    the jobs and deliveries in flight."""

    async def context(app: web.Application) -> AsyncIterator[None]:
        worker = make_worker(rt, yield_to=yield_to)
        delivery = OutboundDelivery(rt)
        if wake_on is not None:
            wake_on(worker.wake)
        worker.start()
        delivery.start()
        yield
        await delivery.stop()
        await worker.stop()

    return context
