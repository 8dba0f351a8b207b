"""Checking a batch's activity events at Strava: fetch as the owner, believe a delete only on 404.

For each event, in three steps over the whole batch: decide what can be decided from what the
batch read (`event_batch.load_batch`: the stored owner, the 404 memo, the connection's token);
spend the calls that are left from the caps on unconfirmed work in one transaction
(`unconfirmed.spend_unconfirmed_calls`); then ask Strava, up to the worker's concurrency at once
(the `gate`) and within the budget (the client's rate-limit hooks). What Strava answered goes into
the batch's `Settlement`; a failure (a 429, a timeout, a refused token) stays with its own job.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import update

from service.background.webhooks.event_batch import LoadedBatch, Settlement
from service.background.webhooks.unconfirmed import spend_unconfirmed_calls
from service.connections.refresh import usable_access_token
from service.core.clock import iso_utc
from service.core.runtime import Runtime
from service.db.models import StravaConnection, WebhookEvent
from service.queue.store import ClaimedJob
from service.ratelimit.batch_budget import counted_together
from service.strava import AccessTokenInvalid, MissingScope, NotFound, RateLimited
from service.subscription.state import IGNORED, PROCESSED
from troubleshooting.vocabulary import ConnectionStatus

Outcome = tuple[str, str | None]
NOT_VISIBLE = "Strava answered 404: the activity is not visible to FitGlue (deleted, or private)"
DELETE_CONFIRMED = "deletion confirmed: Strava answers 404 for this activity"


@dataclass
class _Ask:
    """An event whose outcome depends on Strava's answer to its owner's token."""
    job: ClaimedJob
    event: WebhookEvent
    conn: StravaConnection
    token: str


def not_the_owner(activity_id: int, claimed: int) -> Outcome:
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


async def _token(rt: Runtime, batch: LoadedBatch, conn: StravaConnection) -> str | None:
    """The connection's access token, refreshed first when due (once per batch, not per event)."""
    margin = timedelta(seconds=rt.settings.refresh_margin_s)
    if conn.expires_at is None or conn.expires_at <= rt.clock.now() + margin:
        if conn.id not in batch.refreshed:
            batch.refreshed[conn.id] = await usable_access_token(rt, conn.id)
        return batch.refreshed[conn.id]
    return batch.cached_token(rt, conn)


async def _before_asking(rt: Runtime, batch: LoadedBatch, event: WebhookEvent, conn: StravaConnection,
                         done: Settlement) -> Outcome | str:
    """The outcome when the batch's reads decide it; otherwise the token to ask Strava with."""
    activity_id, owner = event.object_id, event.owner_id
    stored = batch.owners.get(activity_id)
    memo = batch.memos.get((activity_id, owner))
    memo_until = memo + timedelta(seconds=rt.settings.not_found_memo_s) if memo is not None else None
    if memo_until is not None and memo_until <= rt.clock.now():
        memo_until = None
    deleting = event.aspect_type == "delete"
    if deleting and stored is None:
        return IGNORED, "FitGlue holds nothing of this activity: nothing to delete"
    if stored is not None and stored[0] != owner:
        return not_the_owner(activity_id, owner)
    if deleting and stored is not None and stored[1] is not None:
        return IGNORED, "the activity is already recorded as deleted"
    if memo_until is not None:
        if deleting:  # Strava answered 404 within the memo's lifetime: that confirms it
            done.deleted.add((activity_id, owner))
            return PROCESSED, DELETE_CONFIRMED
        return IGNORED, f"Strava answered 404 for this activity recently; not asked again before {iso_utc(memo_until)}"
    token = await _token(rt, batch, conn)
    if token is None:
        if deleting:
            return IGNORED, "no usable access token to confirm the delete with (the connection is no longer active)"
        return IGNORED, "no usable access token (the connection is no longer active)"
    return token


def _after_answer(event: WebhookEvent, answer: dict[str, Any] | None | MissingScope, done: Settlement) -> Outcome:
    """The outcome of Strava's answer (the activity, None for 404, or the missing scope)."""
    activity_id, owner = event.object_id, event.owner_id
    if event.aspect_type == "delete":
        if isinstance(answer, MissingScope):
            return IGNORED, f"the delete cannot be confirmed: the grant cannot read this activity ({answer.summary})"
        if answer is not None:
            if _athlete_of(answer) == owner:
                done.activities.append(answer)
            return IGNORED, "delete not confirmed: Strava still shows this activity to its athlete"
        done.not_found.add((activity_id, owner))
        done.deleted.add((activity_id, owner))
        return PROCESSED, DELETE_CONFIRMED
    if isinstance(answer, MissingScope):
        return IGNORED, f"the grant cannot read this activity ({answer.summary})"
    if answer is None:
        done.not_found.add((activity_id, owner))
        return IGNORED, NOT_VISIBLE
    if _athlete_of(answer) != owner:
        return not_the_owner(activity_id, owner)
    done.activities.append(answer)
    if event.aspect_type == "update":  # announced as updated (a create only when new to us)
        done.updated.add(activity_id)
    return PROCESSED, None


async def check_activity_events(rt: Runtime, batch: LoadedBatch, pairs: list[tuple[ClaimedJob, WebhookEvent]],
                                done: Settlement, failures: dict[int, BaseException],
                                gate: asyncio.Semaphore) -> None:
    """Settle each (job, event) of a connected athlete with activity read into `done`, or put
    its failure into `failures` (by job id)."""
    asks: list[_Ask] = []
    for job, event in pairs:
        conn = batch.connections[event.owner_id]
        try:
            decided = await _before_asking(rt, batch, event, conn, done)
        except Exception as exc:  # a refresh that could not be stored: this job retries
            failures[job.id] = exc
            continue
        if isinstance(decided, str):
            asks.append(_Ask(job, event, conn, decided))
        else:
            done.finish(job, event.id, *decided)
    refusals = await spend_unconfirmed_calls(rt, [ask.event.owner_id for ask in asks])
    for ask, refusal in zip(asks, refusals, strict=True):
        if refusal is not None:
            failures[ask.job.id] = refusal
    allowed = [ask for ask, refusal in zip(asks, refusals, strict=True) if refusal is None]
    stop: list[RateLimited] = []
    async with counted_together(rt.ledger, len(allowed)):  # one budget write for the batch, not two per call
        answers = await asyncio.gather(*(_ask(rt, ask, gate, stop) for ask in allowed), return_exceptions=True)
    for ask, answer in zip(allowed, answers, strict=True):
        if isinstance(answer, BaseException) and not isinstance(answer, MissingScope):
            failures[ask.job.id] = answer
        else:
            done.finish(ask.job, ask.event.id, *_after_answer(ask.event, answer, done))


async def _ask(rt: Runtime, ask: _Ask, gate: asyncio.Semaphore, stop: list[RateLimited]) -> dict[str, Any] | None:
    """The activity as Strava shows it to the owner's token; None for 404. Once the budget refused
    one call of the batch, the calls not yet made wait for the window like it (no call is made)."""
    async with gate:
        if stop:
            raise stop[0]
        try:
            return await rt.require_strava().get_activity(ask.token, ask.event.object_id)
        except NotFound:
            return None
        except AccessTokenInvalid:
            await distrust_access_token(rt, ask.conn.id)
            raise
        except RateLimited as exc:
            stop.append(exc)
            raise
