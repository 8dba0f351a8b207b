"""What an unsigned webhook event may spend at Strava before Strava has confirmed anything.

Anyone can POST a well-formed event naming a connected athlete, so checking events must not let
a stranger spend the app's shared read budget (100 calls per 15 minutes by default):

- **404 memo**: an activity id Strava answered 404 for, to a given athlete's token, is not asked
  about again for that athlete for FITGLUE_NOT_FOUND_MEMO_S (default a day). A forged id costs at
  most one call. The memo expires because, with only `activity:read`, Strava sends a `delete`
  when an activity turns private and a `create` when it turns public again.
- **per-athlete cap**: at most FITGLUE_UNCONFIRMED_CALLS_PER_ATHLETE calls per 15-minute window
  for events claiming one athlete. Past it the event's job waits for the next window (nothing is
  dropped), so a flood aimed at one athlete delays only that athlete's events.

Both live in the database, so every replica sees the same memo and the same counts.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import Table, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from service.core.runtime import Runtime
from service.db.dialect import insert_for
from service.db.models import ActivityNotFound, UnconfirmedEventCalls
from service.queue.failures import WaitUntil
from service.queue.store import WAITING_EVENT_CAP
from service.ratelimit.windows import next_quarter, quarter_start


def _memo_ttl(rt: Runtime) -> timedelta:
    return timedelta(seconds=rt.settings.not_found_memo_s)


async def not_found_until(rt: Runtime, activity_id: int, athlete_id: int) -> datetime | None:
    """When the memo of Strava's 404 for this activity and athlete runs out; None when there is none."""
    async with rt.sessions() as session:
        answered = (await session.execute(select(ActivityNotFound.answered_at).where(
            ActivityNotFound.activity_id == activity_id, ActivityNotFound.athlete_id == athlete_id))
        ).scalar_one_or_none()
    if answered is None:
        return None
    until = answered + _memo_ttl(rt)
    return until if until > rt.clock.now() else None


async def remember_not_found(rt: Runtime, activity_id: int, athlete_id: int) -> None:
    now = rt.clock.now()
    async with rt.write() as session:
        stmt = insert_for(session)(ActivityNotFound).values(activity_id=activity_id, athlete_id=athlete_id,
                                                            answered_at=now)
        await session.execute(stmt.on_conflict_do_update(
            index_elements=["activity_id", "athlete_id"], set_={"answered_at": now}))


async def forget_not_found(rt: Runtime, activity_id: int, athlete_id: int) -> None:
    """Strava showed the activity after all (it turned public again): drop the memo."""
    async with rt.write() as session:
        await session.execute(delete(ActivityNotFound).where(
            ActivityNotFound.activity_id == activity_id, ActivityNotFound.athlete_id == athlete_id))


async def spend_unconfirmed_call(rt: Runtime, athlete_id: int) -> None:
    """Count one Strava call made to check an event claiming `athlete_id`. Raises WaitUntil (the
    next 15-minute window) when this window's cap for the athlete is used up.

    One statement: insert the window's row, or add one to it only while it is below the cap; no
    row back means the cap is reached. Atomic on both databases, so replicas never overshoot.
    """
    now = rt.clock.now()
    cap = rt.settings.unconfirmed_calls_per_athlete
    window = quarter_start(now)
    table = cast(Table, UnconfirmedEventCalls.__table__)
    async with rt.write() as session:
        stmt = insert_for(session)(table).values(athlete_id=athlete_id, window_start=window, calls=1)
        stmt = stmt.on_conflict_do_update(
            index_elements=["athlete_id", "window_start"], set_={"calls": table.c.calls + 1},
            where=table.c.calls < cap).returning(table.c.calls)
        spent = (await session.execute(stmt)).scalar_one_or_none()
    if spent is None:
        raise WaitUntil(next_quarter(now), WAITING_EVENT_CAP,
                        f"events naming athlete {athlete_id} already used this 15-minute window's {cap} "
                        "Strava call(s) for checking unsigned events (FITGLUE_UNCONFIRMED_CALLS_PER_ATHLETE)")


async def prune_memos(session: AsyncSession, cutoff: datetime) -> int:
    """Delete 404 memos answered before `cutoff` (the retention rule of FITGLUE_NOT_FOUND_MEMO_S)."""
    result = await session.execute(delete(ActivityNotFound).where(ActivityNotFound.answered_at <= cutoff))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def prune_past_windows(session: AsyncSession, now: datetime) -> int:
    """Delete the call counts of 15-minute windows that have ended; rows deleted."""
    result = await session.execute(delete(UnconfirmedEventCalls).where(
        UnconfirmedEventCalls.window_start < quarter_start(now)))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
