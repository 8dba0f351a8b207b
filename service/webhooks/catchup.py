"""Catching up on what a broken subscription missed (job kind `catch_up`).

After a repair, each connected athlete gets one low-priority job that lists their activities
since the last event we heard from them (`after=` epoch) one page at a time, through the
rate-limited client, as background work. The list already carries id, name, sport type and start
date, so each page is stored directly: one call per 100 activities instead of one per activity.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from .. import vocab
from ..clock import to_epoch
from ..db.models import StravaConnection
from ..queue.store import PRIORITY_CATCH_UP, ClaimedJob, enqueue
from ..refresh import usable_access_token
from ..runtime import Runtime
from .processing import upsert_summaries

JOB_KIND = "catch_up"
PER_PAGE = 100


async def queue_catch_up(rt: Runtime) -> int:
    """One catch-up job per connected athlete; how many were queued (repeats are deduplicated)."""
    now = rt.clock.now()
    queued = 0
    async with rt.write() as session:
        rows = (await session.execute(
            select(StravaConnection.id, StravaConnection.user_id, StravaConnection.last_event_at,
                   StravaConnection.connected_at)
            .where(StravaConnection.status == vocab.CONNECTED))).all()
        for conn_id, user_id, last_event, connected in rows:
            since: datetime | None = last_event or connected
            if since is None:
                continue
            after = to_epoch(since)
            job_id = await enqueue(session, JOB_KIND, {"connection_id": conn_id, "after": after, "page": 1}, now,
                                   priority=PRIORITY_CATCH_UP, dedupe_key=f"catch_up:{conn_id}:{after}:1",
                                   user_id=user_id)
            queued += job_id is not None
    return queued


async def catch_up_job(rt: Runtime, job: ClaimedJob) -> None:
    conn_id, after, page = (int(job.payload[k]) for k in ("connection_id", "after", "page"))
    token = await usable_access_token(rt, conn_id)
    if token is None:
        return  # no longer connected: nothing to catch up
    activities = await rt.require_strava().list_activities(token, after_epoch=after, page=page, per_page=PER_PAGE)
    await upsert_summaries(rt, activities)
    if activities:  # pages may be short before the end: stop only at an empty one
        async with rt.write() as session:
            await enqueue(session, JOB_KIND, {"connection_id": conn_id, "after": after, "page": page + 1},
                          rt.clock.now(), priority=PRIORITY_CATCH_UP,
                          dedupe_key=f"catch_up:{conn_id}:{after}:{page + 1}", user_id=job.user_id)
