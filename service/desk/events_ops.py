"""SupportDesk operations on the outbound events (README "Outbound events"): list, retry, replay, and
the health figures for the App Home and /metrics. One of the small services
`service.desk.support_desk.SupportDesk` is composed of, reached as `desk.events`; changes are audited. Times are ISO 8601 UTC; `before` cursors are event ids."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update

from service.core.audit_log import audited
from service.core.inputs import BadInput, parse_who
from service.core.runtime import Runtime
from service.db.models import OutboundEvent, StravaConnection, User
from service.desk.boundary import raises_only_support_error
from service.desk.error_table import SupportError
from service.outbox import PENDING, STATES
from service.outbox.outbox_ops import (
    EventView,
    OutboxHealth,
    event_exists,
    list_events,
    outbox_health,
    replay_events,
    retry_events,
    undelivered_condition,
)

EVENT_STATES = STATES  # for the adapters, which reach the outbox only through the desk


@dataclass(frozen=True)
class EventPage:
    """A page of events, newest first (`service.desk.event_models.EventsBody`)."""

    events: list[EventView]
    next_before: int | None  # the id to pass as `before` for the next page; None: this is the last


@dataclass(frozen=True)
class Counted:
    """How many events an operation made due (`retried`) or queued again (`replayed`)."""

    key: str
    count: int


@raises_only_support_error  # failures leave as SupportError only (service/desk/boundary.py)
class EventsOps:
    """`desk.events`: the outbound events of one runtime (README "Outbound events")."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    async def list_events(self, *, state: str | None = None, athlete_id: int | None = None, limit: int = 100,
                          before: int | None = None) -> EventPage:
        """A page of outbound events, newest first; `next_before` is the cursor of the next page (None: last)."""
        if state is not None and state not in STATES:
            raise SupportError("bad_state", f"unknown event state {state!r}; use one of {', '.join(STATES)}")
        async with self.rt.sessions() as session:
            events = await list_events(session, state=state, athlete_id=athlete_id, limit=limit, before=before)
        return EventPage(events, events[-1].id if len(events) == limit else None)

    async def retry_event(self, event_id: int, actor: str) -> Counted:
        """Send a parked (or waiting) event again now. Unknown id: SupportError `not_found`."""
        rt = self.rt
        async with audited(rt.sessions, rt.clock, actor, "retry_event", f"event:{event_id}") as outcome:
            async with rt.write() as session:
                if not await event_exists(session, event_id):
                    outcome.result = "not_found"
                    raise SupportError("not_found", f"no outbound event {event_id}")
                count = await retry_events(session, rt.clock.now(), event_id)
            outcome.detail = f"{count} event(s) due again"
            return Counted("retried", count)

    async def retry_failed_events(self, actor: str) -> Counted:
        """Send every parked event again now, each with a fresh retry schedule."""
        rt = self.rt
        async with audited(rt.sessions, rt.clock, actor, "retry_failed_events", None) as outcome:
            async with rt.write() as session:
                count = await retry_events(session, rt.clock.now())
            outcome.detail = f"{count} event(s) due again"
            return Counted("retried", count)

    async def retry_user_events(self, who: str, actor: str) -> Counted:
        """The `retry_events` action: this user's parked events, and those waiting after a failed
        attempt, due again now. `who` as for diagnose; an unknown user: SupportError `unknown_user`."""
        rt = self.rt
        try:
            parsed = parse_who(who)
        except BadInput as exc:
            raise SupportError("bad_argument", str(exc)) from None
        async with audited(rt.sessions, rt.clock, actor, "retry_events", who.strip()) as outcome:
            async with rt.write() as session:
                owner = select(User.id, StravaConnection.athlete_id).outerjoin(StravaConnection)
                owner = owner.where(StravaConnection.athlete_id == parsed.athlete_id) if parsed.athlete_id \
                    else owner.where(User.email_normalized == parsed.email)
                found = (await session.execute(owner)).first()
                if found is None:
                    outcome.result = "not_found"
                    raise SupportError("unknown_user", f"no FitGlue user matches {who.strip()}")
                now = rt.clock.now()
                result = await session.execute(update(OutboundEvent).where(
                    undelivered_condition(found[1], found[0])).values(
                    state=PENDING, next_attempt_at=now, attempts=0, failed_at=None, updated_at=now))
                count = int(result.rowcount or 0)  # type: ignore[attr-defined]
            outcome.detail = f"{count} event(s) due again"
            return Counted("retried", count)

    async def replay_events(self, since: datetime, athlete_id: int | None, actor: str) -> Counted:
        """Queue the delivered events since `since` again with new webhook-ids (`data.replay_of`)."""
        rt = self.rt
        if not rt.settings.events_enabled:
            raise SupportError("configuration", "outbound events are off: set FITGLUE_EVENTS_URL")
        target = f"athlete:{athlete_id}" if athlete_id is not None else None
        async with audited(rt.sessions, rt.clock, actor, "replay_events", target) as outcome:
            async with rt.write() as session:
                count = await replay_events(session, rt.settings, rt.clock.now(), since, athlete_id)
            outcome.detail = f"{count} event(s) queued again since {since:%Y-%m-%dT%H:%M:%SZ}"
            return Counted("replayed", count)

    async def events_health(self) -> OutboxHealth:
        """Pending, failed, the oldest pending event's time and the last delivery (App Home, /metrics)."""
        async with self.rt.sessions() as session:
            return await outbox_health(session)

