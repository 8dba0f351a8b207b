"""The rate-limit ledger: Strava's usage shared through the database by every replica.

Installed as the StravaClient's hooks. `after_response` stores what each response's headers say
(`X-RateLimit-*` overall, `X-ReadRateLimit-*` read) — including 429s. `before_call` counts each
call we are about to make in the current windows, on top of the last observed usage, with one
conditional UPDATE per budget, so concurrent workers on any replica cannot together overshoot
between two responses. A batch of background calls may be counted at once, and its responses'
headers recorded at once, with `batch_budget.counted_together`. Background calls stop short of the limit by FITGLUE_RATE_LIMIT_RESERVE_PCT,
keeping room for interactive actions (Connect, diagnose, agent buttons); interactive calls stop
only where Strava itself would answer 429.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, case, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.core.clock import Clock
from service.core.metrics import Metrics
from service.db.dialect import insert_for
from service.db.models import RateLimitState
from service.ratelimit.batch_budget import keep_for_batch, take_prepaid
from service.ratelimit.windows import (
    DEFAULT_LIMITS,
    BudgetReading,
    background_share,
    day_start,
    next_quarter,
    quarter_start,
    read_headers,
    reserve_released_at,
    same_window,
    window_resets_at,
)
from service.strava import RateLimited
from troubleshooting.vocabulary import BUDGETS, Budget, Window

log = logging.getLogger(__name__)

_T = cast(Table, RateLimitState.__table__)
CALLS = "fitglue_strava_calls_total"


class BudgetExhausted(RateLimited):
    """Refused before calling Strava: this call would eat into the reserve (or go over the limit)."""

    def __init__(self, message: str, resets_at: datetime) -> None:
        super().__init__(message, None)
        self.resets_at = resets_at


def is_counted(path: str) -> bool:
    """Whether Strava counts a call to `path` against the budgets.

    Token calls carry no rate-limit headers and are treated as uncounted (reference §3); the
    app-level subscription calls were recorded with usage 0,0. Everything else counts against
    both budgets (we make no uploads, so every call is also a "read" call).
    """
    return not (path.startswith("/oauth/token") or path.startswith("/push_subscriptions"))


@dataclass(frozen=True)
class BudgetState:
    budget: str
    limit_15min: int
    limit_daily: int
    # As Strava last reported, or None when nothing was reported in the current window.
    usage_15min: int | None
    usage_daily: int | None
    observed_at: datetime | None
    # Our own count for the current window (>= usage): what the gate decides on.
    counted_15min: int
    counted_daily: int


class _Refused(Exception):
    def __init__(self, budget: str) -> None:
        super().__init__(budget)
        self.budget = budget


def _greatest(a: Any, b: Any) -> Any:
    return case((a > b, a), else_=b)


class RateLimitLedger:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], clock: Clock, reserve_pct: int,
                 metrics: Metrics | None = None,
                 write: Callable[[], AbstractAsyncContextManager[AsyncSession]] | None = None) -> None:
        self.sessions = sessions
        self._write = write or self._own_transaction
        self.clock = clock
        self.reserve_pct = reserve_pct
        self.metrics = metrics or Metrics()
        self._rows_ready = False

    @asynccontextmanager
    async def _own_transaction(self) -> AsyncIterator[AsyncSession]:
        async with self.sessions() as session, session.begin():
            yield session

    # ---- StravaHooks ----------------------------------------------------------------------------

    async def before_call(self, path: str, interactive: bool) -> None:
        if not is_counted(path) or take_prepaid(interactive):
            return
        now = self.clock.now()
        try:
            await self.ensure_rows()
            blocked = await self.reserve(now, interactive)
        except SQLAlchemyError:
            # Fail open: Strava's own 429 still protects us, and the queue keeps the work.
            log.warning("rate-limit ledger unavailable; calling Strava without the budget check", exc_info=True)
            return
        if blocked is None:
            return
        self.metrics.inc(CALLS, "refused_budget")
        resets_at = await self._resets_at(now, interactive)
        who = "interactive" if interactive else "background"
        raise BudgetExhausted(f"Strava {blocked} budget used up for {who} work until the window resets", resets_at)

    async def after_response(self, method: str, path: str, status: int, headers: Mapping[str, str]) -> None:
        self.metrics.inc(CALLS, _outcome(status))
        readings = read_headers(headers)
        if (not readings and status != 429) or (status != 429 and keep_for_batch(readings)):
            return
        try:
            await self.ensure_rows()
            await self.observe(self.clock.now(), readings, status == 429)
        except SQLAlchemyError:
            log.warning("could not record Strava rate-limit headers", exc_info=True)

    # ---- reading -------------------------------------------------------------------------------

    async def snapshot(self) -> dict[Budget, BudgetState]:
        now = self.clock.now()
        async with self.sessions() as session:
            rows = {r.budget: r for r in (await session.execute(select(RateLimitState))).scalars()}
        states: dict[Budget, BudgetState] = {}
        for budget in BUDGETS:
            row = rows.get(budget)
            if row is None:
                limit_15, limit_day = DEFAULT_LIMITS[budget]
                states[budget] = BudgetState(budget, limit_15, limit_day, None, None, None, 0, 0)
                continue
            fresh_15 = same_window(Window.FIFTEEN_MIN, row.observed_at, now)
            fresh_day = same_window(Window.DAILY, row.observed_at, now)
            states[budget] = BudgetState(
                budget, row.limit_15min, row.limit_daily,
                row.usage_15min if fresh_15 else None, row.usage_daily if fresh_day else None, row.observed_at,
                row.counted_15min if same_window(Window.FIFTEEN_MIN, row.counted_quarter, now) else 0,
                row.counted_daily if same_window(Window.DAILY, row.counted_day, now) else 0,
            )
        return states

    async def background_resumes_at(self) -> datetime | None:
        """When background work may call Strava again; None when it may now."""
        return await self._resets_at(self.clock.now(), False, only_if_blocked=True)

    # ---- plumbing ------------------------------------------------------------------------------

    async def ensure_rows(self) -> None:
        if self._rows_ready:
            return
        async with self._write() as session:
            insert = insert_for(session)
            rows = [{"budget": b, "limit_15min": DEFAULT_LIMITS[b][0], "limit_daily": DEFAULT_LIMITS[b][1],
                     "counted_15min": 0, "counted_daily": 0} for b in BUDGETS]
            await session.execute(insert(RateLimitState).values(rows).on_conflict_do_nothing(
                index_elements=["budget"]))
        self._rows_ready = True

    async def reserve(self, now: datetime, interactive: bool, count: int = 1) -> str | None:
        """Count `count` calls in both budgets; the budget that refused them (nothing is counted then)."""
        quarter, day = quarter_start(now), day_start(now)
        current_15 = case((_T.c.counted_quarter == quarter, _T.c.counted_15min), else_=0)
        current_day = case((_T.c.counted_day == day, _T.c.counted_daily), else_=0)
        share_15 = 100 if interactive else background_share(Window.FIFTEEN_MIN, now, self.reserve_pct)
        share_day = 100 if interactive else background_share(Window.DAILY, now, self.reserve_pct)
        try:
            async with self._write() as session:
                for budget in BUDGETS:
                    result = await session.execute(
                        update(_T).where(
                            _T.c.budget == budget,
                            (current_15 + count) * 100 <= _T.c.limit_15min * share_15,
                            (current_day + count) * 100 <= _T.c.limit_daily * share_day,
                        ).values(counted_15min=current_15 + count, counted_daily=current_day + count,
                                 counted_quarter=quarter, counted_day=day))
                    if result.rowcount != 1:  # type: ignore[attr-defined]
                        raise _Refused(budget)  # rolls back the budget counted before it
        except _Refused as refused:
            return refused.budget
        return None

    async def give_back(self, quarter: datetime, day: datetime, count: int) -> None:
        """Uncount `count` calls counted in the windows starting at `quarter` and `day` but not made."""
        async with self._write() as session:
            await session.execute(update(_T).values(
                counted_15min=case((_T.c.counted_quarter == quarter, _greatest(_T.c.counted_15min - count, 0)),
                                   else_=_T.c.counted_15min),
                counted_daily=case((_T.c.counted_day == day, _greatest(_T.c.counted_daily - count, 0)),
                                   else_=_T.c.counted_daily)))

    async def observe(self, now: datetime, readings: Mapping[str, BudgetReading], refused: bool) -> None:
        quarter, day = quarter_start(now), day_start(now)
        async with self._write() as session:
            for budget in BUDGETS:
                reading = readings.get(budget)
                values: dict[str, Any] = {}
                if reading is not None:
                    # Within a window Strava's usage only grows, so an older response arriving late
                    # must not lower it; in a new window the reading replaces what was there.
                    values.update(
                        limit_15min=reading.limit_15min, limit_daily=reading.limit_daily,
                        usage_15min=case((_T.c.observed_at >= quarter,
                                          _greatest(_T.c.usage_15min, reading.usage_15min)),
                                         else_=reading.usage_15min),
                        usage_daily=case((_T.c.observed_at >= day, _greatest(_T.c.usage_daily, reading.usage_daily)),
                                         else_=reading.usage_daily),
                        observed_at=case((_T.c.observed_at > now, _T.c.observed_at), else_=now),
                    )
                seen_15 = reading.usage_15min if reading else 0
                seen_day = reading.usage_daily if reading else 0
                if refused:
                    # A 429 says a window is spent whatever the headers claim: wait for its reset.
                    if reading is not None and reading.exhausted_daily:
                        seen_day = reading.limit_daily
                    else:
                        seen_15 = reading.limit_15min if reading else 10**9
                values.update(
                    counted_15min=case((_T.c.counted_quarter == quarter, _greatest(_T.c.counted_15min, seen_15)),
                                       else_=seen_15),
                    counted_daily=case((_T.c.counted_day == day, _greatest(_T.c.counted_daily, seen_day)),
                                       else_=seen_day),
                    counted_quarter=quarter, counted_day=day,
                )
                await session.execute(update(_T).where(_T.c.budget == budget).values(**values))

    async def _resets_at(self, now: datetime, interactive: bool, only_if_blocked: bool = False) -> Any:
        """When a refused call may go: the window's reset, or earlier for background work when only
        the reserve stands in the way (it is released shortly before the reset)."""
        states = await self.snapshot()
        latest: datetime | None = None
        for state in states.values():
            candidate = None
            for window, counted, limit in ((Window.DAILY, state.counted_daily, state.limit_daily),
                                           (Window.FIFTEEN_MIN, state.counted_15min, state.limit_15min)):
                share = 100 if interactive else background_share(window, now, self.reserve_pct)
                if (counted + 1) * 100 <= limit * share:
                    continue
                within_limit = counted + 1 <= limit
                candidate = (reserve_released_at(window, now) if not interactive and within_limit
                             else window_resets_at(window, now))
                break  # the daily window, checked first, decides when both are closed
            if candidate is not None:
                latest = candidate if latest is None else max(latest, candidate)
        if latest is None and not only_if_blocked:
            latest = next_quarter(now)  # refused a moment ago; the counts moved since: try next window
        return latest


def _outcome(status: int) -> str:
    if 200 <= status < 300:
        return "ok"
    if status == 429:
        return "rate_limited"
    return "server_error" if status >= 500 else "client_error"

