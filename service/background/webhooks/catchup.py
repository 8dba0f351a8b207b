"""Running catch-up jobs (kind `catch_up`), queued by `service.queue.catch_up`.

Two moments queue one low-priority job per athlete:
- after a webhook repair, for each connected athlete that granted activity read, since the last
  event of theirs we processed, else their Connect (a broken subscription means Strava's events
  never reached us; an event merely heard proves nothing, it is unsigned);
- after every successful Connect (first time, or again after `needs_reauth` or `revoked`), in the
  Connect's own transaction, since the earlier of the start of the user's first attempt since
  their last Connect and the last event of theirs we processed. An event that arrived before the
  callback stored the tokens, or while the connection was broken, was ignored then: the catch-up
  lists it again.

The job lists activities with `after=` (epoch seconds) one page at a time through the
rate-limited client, as background work. The list already carries id, name, sport type and start
date, so each page is stored directly: one call per 100 activities instead of one per activity.
Strava filters `after` on an activity's start time, while an event arrives when the activity is
uploaded (hours later for a long ride, days for a watch synced late): so the listing starts
FITGLUE_CATCH_UP_LOOKBACK_S (default a day) before that moment.
"""

from __future__ import annotations

from sqlalchemy import select

from service.background.webhooks.processing import distrust_access_token, upsert_summaries
from service.background.webhooks.unconfirmed import spend_unconfirmed_call
from service.connections.refresh import usable_access_token
from service.core import vocab
from service.core.runtime import Runtime
from service.db.models import StravaConnection
from service.queue.catch_up import PER_PAGE, enqueue_page, is_overflow_run
from service.queue.failures import PermanentJobError
from service.queue.store import ClaimedJob
from service.strava import AccessTokenInvalid


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
    if not vocab.reads_activities(vocab.parse_scopes(granted)):
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
