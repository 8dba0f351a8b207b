"""The queue worker's job handlers by kind (single and batch) and how to make a worker with them.
(Its lifetime in a process is `loops.queue_worker`.)"""

from __future__ import annotations

from collections.abc import Callable

from service.background.bulk_link_job import bulk_links_job
from service.background.outbound import OutboundDelivery
from service.background.webhooks import catchup, processing
from service.background.worker import BatchHandler, Handler, Worker
from service.core.runtime import Runtime
from service.desk.bulk_links import BULK_JOB
from service.queue import ClaimedJob
from service.queue.catch_up import JOB_KIND as CATCH_UP_JOB
from service.subscription.state import JOB_KIND as EVENT_JOB


def job_handlers() -> dict[str, Handler]:
    return {CATCH_UP_JOB: catchup.catch_up_job, BULK_JOB: bulk_links_job}


def batch_handlers() -> dict[str, BatchHandler]:
    """Kinds run a batch at a time (see `Worker`)."""
    return {EVENT_JOB: processing.process_event_batch}


def make_worker(rt: Runtime, *, concurrency: int | None = None, poll_interval: float = 0.5,
                worker_id: str | None = None, yield_to: Callable[[], bool] | None = None) -> Worker:
    return Worker(rt, job_handlers(), concurrency=concurrency, poll_interval=poll_interval, worker_id=worker_id,
                  on_parked=_on_parked, yield_to=yield_to, batch_handlers=batch_handlers())


async def _on_parked(rt: Runtime, job: ClaimedJob, error: str) -> None:
    if job.kind == EVENT_JOB:
        await processing.mark_event_failed(rt, job, error)


async def run_pending(rt: Runtime) -> int:
    """Run every due job now, in this process (tests and one-shot use); how many ran."""
    return await make_worker(rt).run_pending()


async def deliver_pending(rt: Runtime) -> int:
    """Send every outbound event due now, in this process (tests and one-shot use); attempts made."""
    return await OutboundDelivery(rt).run_pending()
