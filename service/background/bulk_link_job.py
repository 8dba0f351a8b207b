"""The queue job that runs a bulk Connect-link run asked for in Slack (service/desk/bulk_links.py).

The work is Slack's (direct messages at Slack's pace, the CSV for the agent), so the job hands the
run to the bot's courier (`Runtime.courier`). A worker without the bot cannot deliver anything: the
run ends failed with that reason, and its finding is free for another run.
"""

from __future__ import annotations

import logging

from sqlalchemy import update

from service.core.runtime import Runtime
from service.db.models import BulkLinkRun
from service.queue import ClaimedJob

log = logging.getLogger(__name__)


async def bulk_links_job(rt: Runtime, job: ClaimedJob) -> None:
    run_id = int(job.payload.get("run_id", 0))
    if rt.courier is None:
        log.warning("bulk run %s cannot run here: the Slack bot is not configured in this process", run_id)
        async with rt.write() as session:
            await session.execute(update(BulkLinkRun).where(BulkLinkRun.id == run_id).values(
                state="failed", active_key=None, finished_at=rt.clock.now(),
                error="the Slack bot is not configured in the worker that took the run"))
        return
    await rt.courier.run_bulk_links(run_id)
