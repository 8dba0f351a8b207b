"""Requests to catch up on activities Strava announced while we could not act on them (job kind
`catch_up`): written in the caller's transaction; `service.background.webhooks.catchup` runs them.

Three moments queue one job per athlete (the first two at low priority):
- after a webhook repair, for each connected athlete that granted activity read, since the last
  event of theirs we processed, else their Connect (a broken subscription means Strava's events
  never reached us; an event merely heard proves nothing, it is unsigned);
- after every successful Connect (first time, or again after `needs_reauth` or `revoked`), in the
  Connect's own transaction, since the earlier of the start of the user's first attempt since
  their last Connect and the last event of theirs we processed. An event that arrived before the
  callback stored the tokens, or while the connection was broken, was ignored then: the catch-up
  lists it again;
- when more of an athlete's activity events wait to be checked than FITGLUE_PENDING_EVENTS_PER_ATHLETE
  (`pending`): since the first event beyond that bound, at event priority, each page counted
  against the caps on unconfirmed work (`unconfirmed`).

Each job lists activities with `after=` (epoch seconds), one page at a time
(`service.background.webhooks.catchup`). Strava filters `after` on an activity's start time, while an event arrives when the activity is
uploaded (hours later for a long ride, days for a watch synced late): so the listing starts
FITGLUE_CATCH_UP_LOOKBACK_S (default a day) before that moment.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from service.core.clock import to_epoch
from service.core.runtime import Runtime
from service.db.models import OAuthAttempt, StravaConnection, WebhookEvent
from service.queue.store import PRIORITY_CATCH_UP, PRIORITY_EVENT, enqueue
from service.subscription.state import PROCESSED
from troubleshooting.permissions import grant_verdict, parse_scopes
from troubleshooting.vocabulary import ConnectionStatus, JobKind

JOB_KIND = JobKind.CATCH_UP
OVERFLOW_RUN = "overflow"
PER_PAGE = 100


def catch_up_after(rt: Runtime, since: datetime) -> int:
    """The `after=` (epoch seconds) for catching up on what was uploaded since `since`."""
    return catch_up_after_s(since, rt.settings.catch_up_lookback_s)


def catch_up_after_s(since: datetime, lookback_s: int) -> int:
    return to_epoch(since - timedelta(seconds=lookback_s))


def is_overflow_run(payload: dict[str, Any]) -> bool:
    """A catch-up standing in for events beyond the pending bound (`pending`): unconfirmed work."""
    return str(payload.get("run") or "").startswith(f"{OVERFLOW_RUN}-")


def page_key(payload: dict[str, Any]) -> str:
    """Equal for the same page of the same run. A repair's runs have no `run`, so repeating a repair
    for the same "since" queues nothing new; each Connect is a run of its own (it must list again
    even when an earlier catch-up from the same moment has finished)."""
    run = payload.get("run")
    return f"catch_up:{payload['connection_id']}:{payload['after']}:{f'{run}:' if run else ''}{payload['page']}"


async def enqueue_page(session: AsyncSession, rt: Runtime, payload: dict[str, Any], user_id: int | None
                        ) -> int | None:
    priority = PRIORITY_EVENT if is_overflow_run(payload) else PRIORITY_CATCH_UP
    return await enqueue(session, JOB_KIND, payload, rt.clock.now(), priority=priority,
                         dedupe_key=page_key(payload), user_id=user_id)


async def _enqueue_first_page(session: AsyncSession, rt: Runtime, conn_id: int, user_id: int, since: datetime,
                              run: str | None = None) -> int | None:
    payload: dict[str, Any] = {"connection_id": conn_id, "after": catch_up_after(rt, since), "page": 1}
    if run:
        payload["run"] = run
    return await enqueue_page(session, rt, payload, user_id)


def _last_processed_event(athlete_id: Any) -> Any:
    """The newest event of the athlete that we processed: the last moment we know we were in step
    with Strava. Not merely the newest event heard: an unsigned event proves nothing by arriving,
    and one that was ignored is exactly what a catch-up is for."""
    return (select(func.max(WebhookEvent.received_at))
            .where(WebhookEvent.owner_id == athlete_id, WebhookEvent.state == PROCESSED).scalar_subquery())


async def queue_catch_up(rt: Runtime) -> int:
    """One catch-up job per connected athlete who granted activity read (for the others Strava
    would refuse every page), since their last processed event or else their Connect; how many
    were queued (repeats are deduplicated)."""
    queued = 0
    async with rt.write() as session:
        rows = (await session.execute(
            select(StravaConnection.id, StravaConnection.user_id,
                   _last_processed_event(StravaConnection.athlete_id).correlate(StravaConnection),
                   StravaConnection.connected_at, StravaConnection.granted_scopes)
            .where(StravaConnection.status == ConnectionStatus.CONNECTED))).all()
        for conn_id, user_id, in_step, connected, granted in rows:
            since: datetime | None = in_step or connected
            if since is None or not grant_verdict(parse_scopes(granted)).can_read_activities:
                continue
            queued += await _enqueue_first_page(session, rt, conn_id, user_id, since) is not None
    return queued


async def _last_processed_event_at(session: AsyncSession, athlete_id: int) -> datetime | None:
    return (await session.execute(select(_last_processed_event(athlete_id)))).scalar_one_or_none()


async def _first_attempt_since(session: AsyncSession, user_id: int, since: datetime | None) -> datetime | None:
    query = select(func.min(OAuthAttempt.started_at)).where(OAuthAttempt.user_id == user_id)
    if since is not None:
        query = query.where(OAuthAttempt.started_at > since)
    return (await session.execute(query)).scalar_one_or_none()


async def queue_catch_up_for_connect(session: AsyncSession, rt: Runtime, conn: StravaConnection, athlete_id: int,
                                     granted: frozenset[str]) -> int | None:
    """Queue the catch-up of a Connect that just succeeded, in its transaction (`session`), called
    before `conn` takes the new grant (its `connected_at` is still the previous Connect's). The job
    id; None when the grant cannot read activities or the same catch-up is queued already."""
    if not grant_verdict(granted).can_read_activities:
        return None
    previous_connect = conn.connected_at
    # The last moment we know we were in step with Strava: the last event of theirs we processed,
    # else the previous Connect (events since then may all have been ignored).
    in_step = await _last_processed_event_at(session, athlete_id) or previous_connect
    first_attempt = await _first_attempt_since(session, conn.user_id, previous_connect)
    since = min((t for t in (in_step, first_attempt) if t is not None), default=rt.clock.now())
    return await _enqueue_first_page(session, rt, conn.id, conn.user_id, since,
                                     run=f"connect-{to_epoch(rt.clock.now())}")
