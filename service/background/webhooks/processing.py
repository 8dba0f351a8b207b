"""What the worker does with stored events (job kind `webhook_event`), a batch at a time.

Nothing in an event is trusted beyond "something happened": events carry no signature. Ownership
is checked against our subscription id and against what we know (an event naming athlete X for an
activity stored as Y's changes nothing); activities are fetched from Strava with the athlete's own
token (`event_checks`); a delete is believed only when Strava answers 404 to that token; a
deauthorization only once Strava refuses the athlete's refresh token. What those checks may spend
is bounded (`unconfirmed`); what is stored once Strava confirmed it, with its outbound event, is
`activity_store`'s.

A batch reads what its checks need once (`event_batch.load_batch`), runs deauthorizations first
(they change the connections the activity checks read), asks Strava for the rest concurrently, and
settles every event and its job in one transaction (`event_batch.settle`). One event per object
per batch: a second event about the same activity or athlete goes back to the queue for the next
batch, so a create and a delete of one activity are still checked in order.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from service.background.webhooks.activity_store import mark_revoked, upsert_summaries
from service.background.webhooks.event_batch import (
    OPEN_STATES,
    LoadedBatch,
    Settlement,
    event_id_of,
    load_batch,
    settle,
)
from service.background.webhooks.event_checks import check_activity_events, distrust_access_token
from service.background.webhooks.unconfirmed import spend_unconfirmed_call
from service.connections.refresh import refresh_connection
from service.core.runtime import Runtime
from service.db.models import StravaConnection, WebhookEvent
from service.queue.store import BatchResult, ClaimedJob
from service.strava import Transient
from service.subscription.cache import subscription_cache
from service.subscription.state import FAILED, IGNORED, NEW, PROCESSED
from troubleshooting.permissions import grant_verdict, parse_scopes
from troubleshooting.vocabulary import ConnectionStatus, RefreshErrorKind

log = logging.getLogger(__name__)

__all__ = ["FAILED", "IGNORED", "NEW", "OPEN_STATES", "PROCESSED", "distrust_access_token", "known_to_fail",
           "mark_event_failed", "process_event_batch", "upsert_summaries"]

NO_ACTIVITY_READ = "the athlete did not grant FitGlue activity read, so Strava would refuse to show the activity"
BUSY_RETRIES, BUSY_WAIT_S = 20, 0.25


def known_to_fail(object_type: str, connected_scopes: str | None) -> str | None:
    """Why checking an event at Strava is bound to fail, so that it gets no job at all (the intake
    stores it settled with this reason); None when it is worth a job. `connected_scopes` is the
    granted scopes of the athlete's connection, None when no FitGlue user has their athlete id."""
    if object_type == "activity" and connected_scopes is not None \
            and not grant_verdict(parse_scopes(connected_scopes)).can_read_activities:
        return NO_ACTIVITY_READ
    return None


async def process_event_batch(rt: Runtime, jobs: list[ClaimedJob], gate: asyncio.Semaphore) -> BatchResult:
    """Check each job's event and settle it with its job (one transaction for the batch). Strava
    calls go through `gate` (the worker's concurrency). Raises only when the batch could not be
    settled at all (its jobs then run again after their lease)."""
    result, done = BatchResult(), Settlement()
    batch = await load_batch(rt, sorted({event_id_of(job) for job in jobs}))
    athletes: list[tuple[ClaimedJob, WebhookEvent]] = []
    activities: list[tuple[ClaimedJob, WebhookEvent]] = []
    seen: set[tuple[str, int]] = set()
    for job in sorted(jobs, key=event_id_of):
        event = batch.events.get(event_id_of(job))
        if event is None:
            done.finish(job)  # pruned, or a job run twice after a lost lease: done already
        elif (event.object_type, event.object_id) in seen:
            result.released.append(job)
        else:
            seen.add((event.object_type, event.object_id))
            (athletes if event.object_type == "athlete" else activities).append((job, event))
    try:
        ours = await _subscription_for(rt, [event for _job, event in athletes + activities])
    except Exception as exc:  # Strava's subscription list could not be read: every event waits for it
        result.failures.update((job.id, exc) for job, _event in athletes + activities)
        await settle(rt, batch, done)
        return result
    for job, event in athletes:  # first: a confirmed deauthorization changes the connection
        try:
            done.finish(job, event.id, *await _athlete_event(rt, batch, event, ours))
        except Exception as exc:
            result.failures[job.id] = exc
    if athletes:  # read the connections again (keeping the athlete events, for `settle`)
        reloaded = await load_batch(rt, [event.id for _job, event in activities])
        batch = LoadedBatch({**batch.events, **reloaded.events}, reloaded.connections, reloaded.owners,
                            reloaded.memos)
    checked = []
    for job, event in activities:
        decided = _precheck(batch, event, ours)
        if decided is None:
            checked.append((job, event))
        else:
            done.finish(job, event.id, *decided)
    await check_activity_events(rt, batch, checked, done, result.failures, gate)
    await settle(rt, batch, done)
    return result


async def _subscription_for(rt: Runtime, events: list[WebhookEvent]) -> int | None:
    ours = await subscription_cache(rt).our_id(look_up=True)
    if any(event.subscription_id != ours for event in events):  # it may have just been re-registered
        ours = await subscription_cache(rt).our_id(look_up=True, fresh=True)
    return ours


def _connection_named(batch: LoadedBatch, event: WebhookEvent,
                      ours: int | None) -> tuple[str, str | None] | StravaConnection:
    """The connection of the athlete the event names, or why the event is ignored."""
    if ours is None or ours != event.subscription_id:
        return IGNORED, "the event names a subscription that is not ours"
    conn = batch.connections.get(event.owner_id)
    if conn is None:
        return IGNORED, "no FitGlue user is connected to this Strava athlete"
    return conn


def _precheck(batch: LoadedBatch, event: WebhookEvent, ours: int | None) -> tuple[str, str | None] | None:
    """The outcome of an activity event decided without Strava; None when Strava must be asked."""
    conn = _connection_named(batch, event, ours)
    if isinstance(conn, tuple):
        return conn
    if conn.status != ConnectionStatus.CONNECTED:
        return IGNORED, f"the connection is {conn.status}"
    if not grant_verdict(parse_scopes(conn.granted_scopes)).can_read_activities:
        return IGNORED, NO_ACTIVITY_READ
    return None


async def _athlete_event(rt: Runtime, batch: LoadedBatch, event: WebhookEvent,
                         ours: int | None) -> tuple[str, str | None]:
    conn = _connection_named(batch, event, ours)
    if isinstance(conn, tuple):
        return conn
    if event.object_id != event.owner_id:
        return IGNORED, "an athlete event must name the same athlete as object and owner"
    if _updates(event).get("authorized") == "false":
        if conn.status == ConnectionStatus.CONNECTED:  # confirming costs a refresh call at Strava
            await spend_unconfirmed_call(rt, event.owner_id)
        return await confirm_deauthorization(rt, conn.id, conn.status)
    return IGNORED, "Strava sends no athlete event but the deauthorization: nothing to do"


async def mark_event_failed(rt: Runtime, job: ClaimedJob, error: str) -> None:
    """The event's job was parked: show it on the event too."""
    event_id = event_id_of(job)
    done = Settlement(outcomes={event_id: (FAILED, error)})
    await settle(rt, LoadedBatch({}, {}, {}, {}), done)


def _updates(event: WebhookEvent) -> dict[str, Any]:
    try:
        value = json.loads(event.updates or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


async def confirm_deauthorization(rt: Runtime, conn_id: int, status: str) -> tuple[str, str | None]:
    """Believe "authorized: false" only when Strava refuses the refresh token (400 RefreshToken invalid)."""
    if status == ConnectionStatus.REVOKED:
        return PROCESSED, "already revoked"
    if status == ConnectionStatus.NOT_CONNECTED:
        return IGNORED, "the connection was not active"
    if status == ConnectionStatus.CONNECTED:
        result = await refresh_connection(rt, conn_id, force=True)
        for _ in range(BUSY_RETRIES):
            if result.error_kind != "busy":
                break
            # A sweep is refreshing this token right now: its answer is as good as ours.
            await asyncio.sleep(BUSY_WAIT_S)
            result = await refresh_connection(rt, conn_id, force=True)
        if result.refreshed:
            log.warning("a deauthorization event for connection %s was not confirmed by Strava "
                        "(the grant is alive): nothing changed", conn_id)
            return IGNORED, "deauthorization not confirmed: Strava still accepts the grant"
        if result.error_kind == ConnectionStatus.NOT_CONNECTED:
            return IGNORED, "the connection was disconnected meanwhile"
        # grant_dead: our refresh got Strava's 400; needs_reauth: a sweep's refresh got it first.
        if result.error_kind not in (RefreshErrorKind.GRANT_DEAD, ConnectionStatus.NEEDS_REAUTH, ConnectionStatus.REVOKED):
            # Timeouts, 5xx, 429, rejected app credentials: ask again later.
            raise Transient(f"could not confirm the deauthorization: {result.error}")
    # The grant is proven dead (just now, or by an earlier refresh that made it needs_reauth).
    await mark_revoked(rt, conn_id)
    return PROCESSED, "deauthorization confirmed by Strava"
