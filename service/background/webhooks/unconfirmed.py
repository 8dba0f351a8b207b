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
- **app-wide cap**: at most FITGLUE_UNCONFIRMED_CALLS_PER_WINDOW such calls per 15-minute window
  for all athletes together (kept in the same table under athlete id 0, which no Strava athlete
  has), so floods aimed at many athletes cannot take the whole window from other work.
- **pending bound** (at intake, `pending.plan_intake`): at most FITGLUE_PENDING_EVENTS_PER_ATHLETE
  activity events of one athlete wait to be checked; the ones beyond are stored settled and one
  catch-up (a listing of the athlete's activities, a call per 100) stands in for all of them, so a
  real activity among them is still fetched, and a real event waits behind at most that many.

Both live in the database, so every replica sees the same memo and the same counts.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import Table, bindparam, delete, select, text, update
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


SPEND_LOCK_KEY = 0x46474C5543  # "FGLUC": serializes batch spending across workers on PostgreSQL
APP_WIDE = 0  # the row counting every athlete's calls together (Strava athlete ids start at 1)


class _CapReached(Exception):
    pass


async def _count_call(session: AsyncSession, athlete_id: int, window: datetime, cap: int) -> None:
    """Add one to the window's count for `athlete_id` only while it is below `cap` (one statement,
    atomic on both databases, so replicas never overshoot). Raises _CapReached otherwise."""
    table = cast(Table, UnconfirmedEventCalls.__table__)
    stmt = insert_for(session)(table).values(athlete_id=athlete_id, window_start=window, calls=1)
    stmt = stmt.on_conflict_do_update(
        index_elements=["athlete_id", "window_start"], set_={"calls": table.c.calls + 1},
        where=table.c.calls < cap).returning(table.c.calls)
    if (await session.execute(stmt)).scalar_one_or_none() is None:
        raise _CapReached


async def spend_unconfirmed_call(rt: Runtime, athlete_id: int) -> None:
    """Count one Strava call made to check an event claiming `athlete_id` (or a catch-up standing
    in for such events). Raises WaitUntil (the next 15-minute window) when this window's cap for
    the athlete, or for all athletes together, is used up; then nothing is counted (one transaction).
    """
    now = rt.clock.now()
    window = quarter_start(now)
    per_athlete, app_wide = rt.settings.unconfirmed_calls_per_athlete, rt.settings.unconfirmed_calls_per_window
    try:
        async with rt.write() as session:
            try:
                await _count_call(session, athlete_id, window, per_athlete)
            except _CapReached:
                reason = (f"events naming athlete {athlete_id} already used this 15-minute window's {per_athlete} "
                          "Strava call(s) for checking unsigned events (FITGLUE_UNCONFIRMED_CALLS_PER_ATHLETE)")
                raise
            reason = (f"checking unsigned events already used this 15-minute window's {app_wide} Strava call(s) "
                      "for all athletes together (FITGLUE_UNCONFIRMED_CALLS_PER_WINDOW)")
            await _count_call(session, APP_WIDE, window, app_wide)  # rolls the athlete's count back if refused
    except _CapReached:
        raise WaitUntil(next_quarter(now), WAITING_EVENT_CAP, reason) from None


def _cap_reason(rt: Runtime, athlete_id: int, app_wide: bool) -> str:
    if app_wide:
        return (f"checking unsigned events already used this 15-minute window's "
                f"{rt.settings.unconfirmed_calls_per_window} Strava call(s) for all athletes together "
                "(FITGLUE_UNCONFIRMED_CALLS_PER_WINDOW)")
    return (f"events naming athlete {athlete_id} already used this 15-minute window's "
            f"{rt.settings.unconfirmed_calls_per_athlete} Strava call(s) for checking unsigned events "
            "(FITGLUE_UNCONFIRMED_CALLS_PER_ATHLETE)")


async def spend_unconfirmed_calls(rt: Runtime, athletes: list[int]) -> list[WaitUntil | None]:
    """`spend_unconfirmed_call` for a batch, in order, in ONE transaction: for each entry None (the
    call is counted) or the WaitUntil its event must wait with. Spending is serialized across
    workers (an advisory lock on PostgreSQL; SQLite's write lock), so the counts read are the counts
    written and the caps hold exactly as call by call."""
    if not athletes:
        return []
    now = rt.clock.now()
    window = quarter_start(now)
    per_athlete, app_wide = rt.settings.unconfirmed_calls_per_athlete, rt.settings.unconfirmed_calls_per_window
    table = cast(Table, UnconfirmedEventCalls.__table__)
    # Athletes first, the app-wide row last: the order `spend_unconfirmed_call` takes them in, so a
    # single spend and a batch never wait on each other in a cycle.
    rows = [*sorted(set(athletes) - {APP_WIDE}), APP_WIDE]
    async with rt.write() as session:
        if session.get_bind().dialect.name == "postgresql":
            await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SPEND_LOCK_KEY})
        await session.execute(insert_for(session)(table).on_conflict_do_nothing(
            index_elements=["athlete_id", "window_start"]),
            [{"athlete_id": a, "window_start": window, "calls": 0} for a in rows])
        counts = dict((await session.execute(select(table.c.athlete_id, table.c.calls).where(
            table.c.window_start == window, table.c.athlete_id.in_(rows)))).all())
        before = dict(counts)
        answers: list[WaitUntil | None] = []
        for athlete in athletes:
            refused_by_app = counts[athlete] < per_athlete and counts[APP_WIDE] >= app_wide
            if counts[athlete] >= per_athlete or refused_by_app:
                answers.append(WaitUntil(next_quarter(now), WAITING_EVENT_CAP,
                                         _cap_reason(rt, athlete, refused_by_app)))
                continue
            counts[athlete] += 1
            counts[APP_WIDE] += 1
            answers.append(None)
        spent = [{"b_athlete": a, "b_more": counts[a] - before[a]} for a in rows if counts[a] != before[a]]
        if spent:  # increments, so a single spend made meanwhile is not overwritten
            await session.execute(update(table).where(
                table.c.athlete_id == bindparam("b_athlete"), table.c.window_start == window)
                .values(calls=table.c.calls + bindparam("b_more")), spent)
    return answers


async def prune_memos(session: AsyncSession, cutoff: datetime) -> int:
    """Delete 404 memos answered before `cutoff` (the retention rule of FITGLUE_NOT_FOUND_MEMO_S)."""
    result = await session.execute(delete(ActivityNotFound).where(ActivityNotFound.answered_at <= cutoff))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def prune_past_windows(session: AsyncSession, now: datetime) -> int:
    """Delete the call counts of 15-minute windows that have ended; rows deleted."""
    result = await session.execute(delete(UnconfirmedEventCalls).where(
        UnconfirmedEventCalls.window_start < quarter_start(now)))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]

