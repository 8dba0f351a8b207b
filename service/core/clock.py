"""The one clock every time-dependent piece reads, so tests can move time instead of sleeping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock that only moves when told to: for tests and simulations."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 11, 27, 12, 0, 0, tzinfo=UTC)
        if self._now.tzinfo is None:
            raise ValueError("ManualClock needs a timezone-aware start time")

    def now(self) -> datetime:
        return self._now

    def advance(self, seconds: float = 0, **delta: float) -> datetime:
        self._now += timedelta(seconds=seconds, **delta)
        return self._now

    def set(self, when: datetime) -> None:
        if when.tzinfo is None:
            raise ValueError("ManualClock.set needs a timezone-aware time")
        self._now = when


def to_epoch(when: datetime) -> int:
    return int(when.timestamp())


def from_epoch(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def iso_utc(when: datetime | None) -> str | None:
    """ISO 8601 UTC with a Z, as every JSON output of ours writes times (whole seconds)."""
    if when is None:
        return None
    # Not strftime("%Y-..."): glibc writes the years before 1000 without leading zeros ('1-01-01'),
    # which is not ISO 8601 and which our own JSON bodies then refuse. isoformat pads to four digits.
    return when.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="seconds") + "Z"
