"""Running catch-up jobs (kind `catch_up`); when and from when they are queued is
`service.queue.catch_up`'s docstring.

Each job lists one page of the athlete's activities with `after=` (epoch seconds) through the
rate-limited client and stores the page directly (the list carries id, name, sport type and start
date: one call per 100 activities instead of one per activity), then queues the next page until an
empty one. A catch-up standing in for events beyond the pending bound spends from the caps on
unconfirmed work, as those events would have.
"""

from __future__ import annotations

from sqlalchemy import select

from service.background.webhooks.activity_store import upsert_summaries
from service.background.webhooks.processing import distrust_access_token
from service.background.webhooks.unconfirmed import spend_unconfirmed_call
from service.connections.refresh import usable_access_token
from service.core.runtime import Runtime
from service.db.models import StravaConnection
from service.queue.catch_up import PER_PAGE, enqueue_page, is_overflow_run
from service.queue.failures import PermanentJobError
from service.queue.store import ClaimedJob
from service.strava import AccessTokenInvalid
from troubleshooting.permissions import grant_verdict, parse_scopes


async def _connection_status(rt: Runtime, conn_id: int) -> tuple[str | None, str | None]:
    async with rt.sessions() as session:
        row = (await session.execute(select(StravaConnection.status, StravaConnection.granted_scopes)
                                     .where(StravaConnection.id == conn_id))).first()
    return (row[0], row[1]) if row is not None else (None, None)


async def catch_up_job(rt: Runtime, job: ClaimedJob) -> None:
    try:
        conn_id, after, page = (int(job.payload[k]) for k in ("connection_id", "after", "page"))
    except (KeyError, TypeError, ValueError):
        raise PermanentJobError("the job's payload is not a catch-up request") from None
    status, granted = await _connection_status(rt, conn_id)
    if not grant_verdict(parse_scopes(granted)).can_read_activities:
        raise PermanentJobError("the athlete did not grant activity read, so Strava would refuse the listing; "
                                "a Connect that grants it queues a new catch-up")
    token = await usable_access_token(rt, conn_id)
    if token is None:
        raise PermanentJobError(f"the connection is {status or 'gone'}, so there is no access token to list "
                                "activities with; the user's next Connect queues a new catch-up")
    if is_overflow_run(job.payload):  # stands in for unconfirmed events: it spends what they would
        await spend_unconfirmed_call(rt, int(job.payload.get("athlete_id") or 0))
    try:
        activities = await rt.require_strava().list_activities(token, after_epoch=after, page=page,
                                                               per_page=PER_PAGE)
    except AccessTokenInvalid:
        await distrust_access_token(rt, conn_id)
        raise
    await upsert_summaries(rt, activities)
    if activities:  # pages may be short before the end: stop only at an empty one
        async with rt.write() as session:
            await enqueue_page(session, rt, {**job.payload, "page": page + 1}, job.user_id)
