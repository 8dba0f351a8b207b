"""What the worker does with a stored event (job kind `webhook_event`).

Nothing in an event is trusted beyond "something happened": events carry no signature. Ownership
is checked against our subscription id and against what we know (an event naming athlete X for an
activity stored as Y's changes nothing); activities are fetched from Strava with the athlete's own
token; a delete is believed only when Strava answers 404 to that token; a deauthorization only once
Strava refuses the athlete's refresh token. What those checks may spend is bounded (`unconfirmed`),
what is stored once Strava confirmed it (with its outbound event) is `activity_store`'s."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from service.background.webhooks.activity_store import mark_revoked, record_deleted, upsert_summaries
from service.background.webhooks.unconfirmed import not_found_until, remember_not_found
from service.background.webhooks.unconfirmed import spend_unconfirmed_call as spend_unconfirmed_call
from service.connections.refresh import refresh_connection, usable_access_token
from service.core.clock import iso_utc
from service.core.runtime import Runtime
from service.db.models import ActivitySummary, StravaConnection, WebhookEvent
from service.queue.store import SETTLED, ClaimedJob, mark_done_in
from service.strava import AccessTokenInvalid, MissingScope, NotFound, Transient
from service.subscription.cache import subscription_cache
from service.subscription.state import (
    FAILED,
    IGNORED,
    NEW,
    PROCESSED,
)
from troubleshooting.permissions import grant_verdict, parse_scopes
from troubleshooting.vocabulary import ConnectionStatus, RefreshErrorKind

log = logging.getLogger(__name__)

# A failed event is open again when an operator retries its parked job.
OPEN_STATES = (NEW, FAILED)
EVENTS_PROCESSED = "fitglue_webhook_events_processed_total"
NO_ACTIVITY_READ = "the athlete did not grant FitGlue activity read, so Strava would refuse to show the activity"
BUSY_RETRIES, BUSY_WAIT_S = 20, 0.25


def known_to_fail(object_type: str, connected_scopes: str | None) -> str | None:
    """Why checking an event at Strava is bound to fail, so that it gets no job at all (the intake
    stores it settled with this reason); None when it is worth a job. `connected_scopes` is the
    granted scopes of the athlete's connection, None when no FitGlue user has their athlete id."""
    if object_type == "activity" and connected_scopes is not None and not grant_verdict(parse_scopes(connected_scopes)).can_read_activities:
        return NO_ACTIVITY_READ
    return None


async def process_event_job(rt: Runtime, job: ClaimedJob) -> object:
    event_id = int(job.payload.get("event_id", 0))
    async with rt.sessions() as session:
        event = await session.get(WebhookEvent, event_id)
    if event is None or event.state not in OPEN_STATES:
        return None  # pruned, or a job run twice after a lost lease: done already
    outcome, note = await _handle(rt, event)
    await _finish_event(rt, event_id, outcome, note, job)
    return SETTLED


async def mark_event_failed(rt: Runtime, job: ClaimedJob, error: str) -> None:
    """The event's job was parked: show it on the event too."""
    await _finish_event(rt, int(job.payload.get("event_id", 0)), FAILED, error)


async def _finish_event(rt: Runtime, event_id: int, outcome: str, note: str | None,
                        job: ClaimedJob | None = None) -> None:
    now = rt.clock.now()
    async with rt.write() as session:
        settled = await session.execute(
            update(WebhookEvent).where(WebhookEvent.id == event_id, WebhookEvent.state.in_(OPEN_STATES))
            .values(state=outcome, error=note, processed_at=now)
            .returning(WebhookEvent.owner_id, WebhookEvent.received_at))
        heard = settled.first()
        if outcome == PROCESSED and heard is not None:
            await _heard_from(session, *heard)
        if job is not None:  # the event and its job settle in one transaction
            await mark_done_in(session, job, now)
    rt.metrics.inc(EVENTS_PROCESSED, outcome)


async def _heard_from(session: AsyncSession, athlete_id: int, received_at: datetime) -> None:
    """Record that Strava's events reach us for this athlete (`webhook_silent` in the diagnosis).
    Only for an event Strava confirmed (processed): a forged one arrives just as easily."""
    await session.execute(update(StravaConnection).where(
        StravaConnection.athlete_id == athlete_id,
        or_(StravaConnection.last_event_at.is_(None), StravaConnection.last_event_at < received_at))
        .values(last_event_at=received_at))


async def _handle(rt: Runtime, event: WebhookEvent) -> tuple[str, str | None]:
    ours = await subscription_cache(rt).our_id(look_up=True)
    if ours != event.subscription_id:  # it may have just been re-registered
        ours = await subscription_cache(rt).our_id(look_up=True, fresh=True)
    if ours is None or ours != event.subscription_id:
        return IGNORED, "the event names a subscription that is not ours"
    async with rt.sessions() as session:
        found = (await session.execute(select(
            StravaConnection.id, StravaConnection.status, StravaConnection.granted_scopes).where(
            StravaConnection.athlete_id == event.owner_id))).first()
    if found is None:
        return IGNORED, "no FitGlue user is connected to this Strava athlete"
    conn_id, status, granted = found
    updates = _updates(event)
    if event.object_type == "athlete":
        if event.object_id != event.owner_id:
            return IGNORED, "an athlete event must name the same athlete as object and owner"
        if updates.get("authorized") == "false":
            if status == ConnectionStatus.CONNECTED:  # confirming costs a refresh call at Strava
                await spend_unconfirmed_call(rt, event.owner_id)
            return await confirm_deauthorization(rt, conn_id, status)
        return IGNORED, "Strava sends no athlete event but the deauthorization: nothing to do"
    if status != ConnectionStatus.CONNECTED:
        return IGNORED, f"the connection is {status}"
    if not grant_verdict(parse_scopes(granted)).can_read_activities:
        return IGNORED, NO_ACTIVITY_READ
    if event.aspect_type == "delete":
        return await _confirm_delete(rt, conn_id, event.object_id, event.owner_id)
    return await _fetch_activity(rt, conn_id, event.object_id, event.owner_id, event.aspect_type)


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


async def _stored_owner(rt: Runtime, activity_id: int) -> tuple[int, datetime | None] | None:
    """(athlete id, deleted at) of the activity's stored summary, or None when we hold none."""
    async with rt.sessions() as session:
        row = (await session.execute(select(ActivitySummary.athlete_id, ActivitySummary.deleted_at)
                                     .where(ActivitySummary.id == activity_id))).first()
    return (row[0], row[1]) if row is not None else None


def _not_the_owner(activity_id: int, claimed: int) -> tuple[str, str]:
    return IGNORED, f"the event names athlete {claimed}, but activity {activity_id} belongs to another athlete"


def _athlete_of(activity: dict[str, Any]) -> int | None:
    try:
        return int((activity.get("athlete") or {})["id"])
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


async def distrust_access_token(rt: Runtime, conn_id: int) -> None:
    """Strava refused the access token (401, not a missing scope): treat it as expired, so the next
    attempt refreshes first, and a dead grant shows up as `needs_reauth` instead of more 401s."""
    async with rt.write() as session:
        await session.execute(update(StravaConnection).where(
            StravaConnection.id == conn_id, StravaConnection.status == ConnectionStatus.CONNECTED)
            .values(expires_at=rt.clock.now()))


class _NoToken(Exception):
    pass


async def _get_as_owner(rt: Runtime, conn_id: int, activity_id: int, owner_id: int) -> dict[str, Any] | None:
    """The activity as Strava shows it to `owner_id`'s token, spending one call of the athlete's cap
    for unconfirmed events; None when Strava answers 404 (remembered, see `unconfirmed`).
    Raises _NoToken, WaitUntil (cap reached), MissingScope and the client's other errors."""
    token = await usable_access_token(rt, conn_id)
    if token is None:
        raise _NoToken
    await spend_unconfirmed_call(rt, owner_id)
    try:
        return await rt.require_strava().get_activity(token, activity_id)
    except NotFound:
        await remember_not_found(rt, activity_id, owner_id)
        return None
    except AccessTokenInvalid:
        await distrust_access_token(rt, conn_id)
        raise


async def _fetch_activity(rt: Runtime, conn_id: int, activity_id: int, owner_id: int, aspect: str) -> tuple[str, str | None]:
    """A create or update: store Strava's own view of the activity, if it is the claimed owner's."""
    stored = await _stored_owner(rt, activity_id)
    if stored is not None and stored[0] != owner_id:
        return _not_the_owner(activity_id, owner_id)
    memo = await not_found_until(rt, activity_id, owner_id)
    if memo is not None:
        return IGNORED, f"Strava answered 404 for this activity recently; not asked again before {iso_utc(memo)}"
    try:
        activity = await _get_as_owner(rt, conn_id, activity_id, owner_id)
    except _NoToken:
        return IGNORED, "no usable access token (the connection is no longer active)"
    except MissingScope as exc:
        return IGNORED, f"the grant cannot read this activity ({exc.summary})"
    if activity is None:
        return IGNORED, "Strava answered 404: the activity is not visible to FitGlue (deleted, or private)"
    if _athlete_of(activity) != owner_id:
        return _not_the_owner(activity_id, owner_id)
    await upsert_summaries(rt, [activity], updated_ids=(activity_id,) if aspect == "update" else ())
    return PROCESSED, None


async def _confirm_delete(rt: Runtime, conn_id: int, activity_id: int, owner_id: int) -> tuple[str, str | None]:
    """A delete is believed only when Strava answers 404 to the stored owner's token (now, or within
    the memo's lifetime); whatever it still shows is kept."""
    stored = await _stored_owner(rt, activity_id)
    if stored is None:
        return IGNORED, "FitGlue holds nothing of this activity: nothing to delete"
    if stored[0] != owner_id:
        return _not_the_owner(activity_id, owner_id)
    if stored[1] is not None:
        return IGNORED, "the activity is already recorded as deleted"
    if await not_found_until(rt, activity_id, owner_id) is None:
        try:
            activity = await _get_as_owner(rt, conn_id, activity_id, owner_id)
        except _NoToken:
            return IGNORED, "no usable access token to confirm the delete with (the connection is no longer active)"
        except MissingScope as exc:
            return IGNORED, f"the delete cannot be confirmed: the grant cannot read this activity ({exc.summary})"
        if activity is not None:
            if _athlete_of(activity) == owner_id:
                await upsert_summaries(rt, [activity])
            return IGNORED, "delete not confirmed: Strava still shows this activity to its athlete"
    await record_deleted(rt, activity_id, owner_id)
    return PROCESSED, "deletion confirmed: Strava answers 404 for this activity"
