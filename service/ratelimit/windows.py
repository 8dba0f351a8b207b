"""Strava's rate-limit windows and headers, as pure arithmetic (no I/O, no clock of its own).

Two budgets — "overall" (`X-RateLimit-*`) and "read" (`X-ReadRateLimit-*`, every endpoint but
uploads) — each with a 15-minute window (resetting at :00/:15/:30/:45 UTC) and a daily window
(resetting at midnight UTC). Header values are "<15-min>,<daily>"; names arrive in any case.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from troubleshooting.vocabulary import Budget, Window

# Only defaults until Strava's headers say otherwise (reference §3: limits come from the headers).
DEFAULT_LIMITS: Mapping[str, tuple[int, int]] = {Budget.OVERALL: (200, 2000), Budget.READ: (100, 1000)}

_HEADER_PREFIX = {Budget.OVERALL: "x-ratelimit", Budget.READ: "x-readratelimit"}
QUARTER = timedelta(minutes=15)


@dataclass(frozen=True)
class BudgetReading:
    """One budget as one response's headers reported it."""

    budget: str
    limit_15min: int
    limit_daily: int
    usage_15min: int
    usage_daily: int

    @property
    def exhausted_daily(self) -> bool:
        return self.usage_daily >= self.limit_daily

    @property
    def exhausted_15min(self) -> bool:
        return self.usage_15min >= self.limit_15min


def parse_pair(value: str | None) -> tuple[int, int] | None:
    """"200,2000" -> (200, 2000); anything else (missing, garbled, negative) -> None."""
    if not value:
        return None
    parts = [p.strip() for p in value.split(",")]
    if len(parts) != 2:
        return None
    try:
        short, daily = int(parts[0]), int(parts[1])
    except ValueError:
        return None
    if short < 0 or daily < 0:
        return None
    return short, daily


def read_headers(headers: Mapping[str, str]) -> dict[str, BudgetReading]:
    """The budgets a response reported, keyed by budget; a budget needs both its limit and usage."""
    folded = {str(k).casefold(): v for k, v in headers.items()}
    readings: dict[str, BudgetReading] = {}
    for budget, prefix in _HEADER_PREFIX.items():
        limits = parse_pair(folded.get(f"{prefix}-limit"))
        usage = parse_pair(folded.get(f"{prefix}-usage"))
        if limits is None or usage is None:
            continue
        readings[budget] = BudgetReading(budget, limits[0], limits[1], usage[0], usage[1])
    return readings


def quarter_start(when: datetime) -> datetime:
    when = when.astimezone(UTC)
    return when.replace(minute=when.minute - when.minute % 15, second=0, microsecond=0)


def next_quarter(when: datetime) -> datetime:
    return quarter_start(when) + QUARTER


def day_start(when: datetime) -> datetime:
    return when.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def next_midnight(when: datetime) -> datetime:
    return day_start(when) + timedelta(days=1)


def window_start(window: str, when: datetime) -> datetime:
    return quarter_start(when) if window == Window.FIFTEEN_MIN else day_start(when)


def window_resets_at(window: str, when: datetime) -> datetime:
    return next_quarter(when) if window == Window.FIFTEEN_MIN else next_midnight(when)


def same_window(window: str, a: datetime | None, b: datetime) -> bool:
    """Whether `a` falls in the same window as `b` (usage seen in an earlier window no longer counts)."""
    return a is not None and window_start(window, a) == window_start(window, b)


# The reserve for interactive actions is released this close to a window's reset: what the
# agents did not need by then would only go to waste, and a backlog can use it instead.
RESERVE_RELEASE: dict[str, timedelta] = {Window.FIFTEEN_MIN: timedelta(seconds=60), Window.DAILY: timedelta(minutes=15)}


def reserve_released_at(window: str, when: datetime) -> datetime:
    return window_resets_at(window, when) - RESERVE_RELEASE[window]


def background_share(window: str, when: datetime, reserve_pct: int) -> int:
    """Percent of the window's limit background work may use at `when`."""
    return 100 if when >= reserve_released_at(window, when) else 100 - reserve_pct


def background_cap(limit: int, reserve_pct: int) -> int:
    """How many calls background work may use of `limit`, keeping `reserve_pct` for interactive actions."""
    return (limit * (100 - reserve_pct)) // 100
