"""Per-application request budgets in Strava's windows: quarter hours and UTC days."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime

from service.core.clock import to_epoch

QUARTER_S = 15 * 60


@dataclass
class Budget:
    """One budget (overall or read) with a 15-minute and a daily limit.

    ``get_limits`` is read on every request, so a test may change the limits mid-run.
    """

    get_limits: Callable[[], tuple[int, int]]
    _quarter: int = -1
    _day: date | None = None
    _usage: list[int] = field(default_factory=lambda: [0, 0])

    def _roll(self, now: datetime) -> None:
        quarter = to_epoch(now) // QUARTER_S
        if quarter != self._quarter:
            self._quarter, self._usage[0] = quarter, 0
        if now.date() != self._day:
            self._day, self._usage[1] = now.date(), 0

    def usage(self, now: datetime) -> tuple[int, int]:
        self._roll(now)
        return self._usage[0], self._usage[1]

    def hit(self, now: datetime) -> bool:
        """Count one request; False when it goes over a limit (it still counts, as at Strava)."""
        self._roll(now)
        self._usage[0] += 1
        self._usage[1] += 1
        short, daily = self.limits
        return self._usage[0] <= short and self._usage[1] <= daily

    def exhaust(self, now: datetime, daily: bool) -> None:
        """Use the 15-minute (or daily) window up: the next counted request goes over the limit."""
        self._roll(now)
        short, long = self.limits
        if daily:
            self._usage[1] = max(self._usage[1], long)
        else:
            self._usage[0] = max(self._usage[0], short)

    @property
    def limits(self) -> tuple[int, int]:
        return self.get_limits()


class RateLimits:
    def __init__(self, overall: Callable[[], tuple[int, int]], read: Callable[[], tuple[int, int]]) -> None:
        self.overall = Budget(overall)
        self.read = Budget(read)

    def hit(self, now: datetime) -> bool:
        """Count a request against both budgets (the stand-in has no upload endpoints)."""
        overall_ok = self.overall.hit(now)
        read_ok = self.read.hit(now)
        return overall_ok and read_ok

    def headers(self, now: datetime) -> dict[str, str]:
        """Exactly the casing Strava puts on the wire."""

        def pair(values: tuple[int, int]) -> str:
            return f"{values[0]},{values[1]}"

        return {
            "X-Ratelimit-Limit": pair(self.overall.limits),
            "X-Ratelimit-Usage": pair(self.overall.usage(now)),
            "X-Readratelimit-Limit": pair(self.read.limits),
            "X-Readratelimit-Usage": pair(self.read.usage(now)),
        }
