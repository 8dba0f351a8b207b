"""Writing outbound events into the outbox, always inside the caller's transaction (the way
`service.queue.store.enqueue` writes a job): the state change and the event that describes it commit
together, so a crash can neither lose an event nor announce a change that did not happen.

While FITGLUE_EVENTS_URL is unset nothing is written. What goes into `data` is decided here, once:
the connection's e-mail, athlete id, status and granted scopes, and for activities only what Strava
itself answered. Never a token or a secret: the builders below take no token and copy no free-form
mapping except Strava's activity answer, reduced to `ACTIVITY_FIELDS`.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, not_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from service.core.clock import iso_utc
from service.core.settings import Settings
from service.db.models import OutboundEvent
from service.outbox.event_types import EVENT_TYPES, PENDING, SENT_AFTER_ERASURE, USER_ERASED
from troubleshooting.vocabulary import ConnectionStatus

# The summary fields forwarded from Strava's own answer (GET /activities/{id}, "DetailedActivity";
# the list endpoint's "SummaryActivity" has the same names). Nothing from the push event itself:
# those are unsigned and may be forged.
ACTIVITY_FIELDS = ("id", "name", "sport_type", "type", "start_date", "start_date_local", "timezone", "distance",
                   "moving_time", "elapsed_time", "total_elevation_gain", "private", "visibility", "manual",
                   "trainer", "commute", "device_name", "external_id", "upload_id", "average_speed", "max_speed",
                   "average_heartrate", "max_heartrate", "kilojoules", "calories")


def new_webhook_id() -> str:
    """A Standard Webhooks message id: unique, opaque, the same on every retry of one event."""
    return "msg_" + secrets.token_hex(16)


def connection_data(email: str | None, athlete_id: int | None, status: str,
                    granted_scopes: str | None) -> dict[str, Any]:
    """What every connection event carries: e-mail, athlete id, status, and the granted scopes
    (a sorted list; left out when no grant applies)."""
    data: dict[str, Any] = {"email": email, "athlete_id": athlete_id, "status": status}
    if granted_scopes is not None:
        data["granted_scopes"] = sorted(s for s in granted_scopes.split(",") if s)
    return data


def activity_summary(activity: Mapping[str, Any]) -> dict[str, Any]:
    """The summary of Strava's answer for an activity: the fields of ACTIVITY_FIELDS it has."""
    return {name: activity[name] for name in ACTIVITY_FIELDS if name in activity}


def event_body(event_type: str, timestamp: datetime, data: Mapping[str, Any]) -> str:
    """The JSON body as it is sent and signed: `{"type", "timestamp", "data"}`."""
    return json.dumps({"type": event_type, "timestamp": iso_utc(timestamp), "data": dict(data)},
                      separators=(",", ":"), sort_keys=False)


async def write_event(session: AsyncSession, settings: Settings, now: datetime, event_type: str,
                      data: Mapping[str, Any], *, athlete_id: int | None = None, user_id: int | None = None,
                      replay_of: str | None = None) -> int | None:
    """Add one event to the outbox in the caller's transaction, due now; its row id. None (and
    nothing written) while FITGLUE_EVENTS_URL is unset. Raises ValueError for an unknown type."""
    if not settings.events_enabled:
        return None
    if event_type not in EVENT_TYPES:
        raise ValueError(f"not an outbound event type: {event_type!r}")
    row = OutboundEvent(webhook_id=new_webhook_id(), type=event_type, athlete_id=athlete_id, user_id=user_id,
                        body=event_body(event_type, now, data), state=PENDING, attempts=0, next_attempt_at=now,
                        replay_of=replay_of, created_at=now, updated_at=now)
    session.add(row)
    await session.flush()
    return row.id


async def announce_erasure(session: AsyncSession, settings: Settings, now: datetime, athlete_id: int | None,
                           label: str) -> int | None:
    """`fitglue.user.erased`: the athlete id, status `unknown_user` and the anonymous label; no e-mail."""
    return await write_event(session, settings, now, USER_ERASED,
                             {"athlete_id": athlete_id, "status": ConnectionStatus.UNKNOWN_USER.value, "label": label}, athlete_id=athlete_id)


def _redacted(body: str, athlete_id: int | None) -> str:
    """The body with `data` reduced to the athlete id, the status and (for an erasure) the label."""
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = {}
    data = parsed.get("data") if isinstance(parsed, dict) else None
    data = data if isinstance(data, dict) else {}
    kept = {"athlete_id": data.get("athlete_id", athlete_id), "status": data.get("status")}
    if "label" in data:
        kept["label"] = data["label"]
    return json.dumps({"type": parsed.get("type"), "timestamp": parsed.get("timestamp"), "data": kept},
                      separators=(",", ":"))


async def erase_outbox(session: AsyncSession, athlete_ids: Collection[int], user_ids: Collection[int]) -> int:
    """In the caller's transaction, remove these athletes' and users' outbound events, pending or
    delivered, except a pending revocation or erasure: that still goes out, redacted to the athlete
    id. How many rows were deleted."""
    athletes, users = sorted(set(athlete_ids)), sorted(set(user_ids))
    if not athletes and not users:
        return 0
    theirs = or_(OutboundEvent.athlete_id.in_(athletes), OutboundEvent.user_id.in_(users))
    still_sent = and_(OutboundEvent.state == PENDING, OutboundEvent.type.in_(SENT_AFTER_ERASURE))
    kept = (await session.execute(select(OutboundEvent.id, OutboundEvent.body, OutboundEvent.athlete_id)
                                  .where(theirs, still_sent))).all()
    for row_id, body, athlete_id in kept:
        await session.execute(update(OutboundEvent).where(OutboundEvent.id == row_id)
                              .values(body=_redacted(body, athlete_id), user_id=None))
    result = await session.execute(delete(OutboundEvent).where(theirs, not_(still_sent)))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
