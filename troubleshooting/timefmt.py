"""Time formatting for findings (human text) and facts (ISO 8601 UTC)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def utc(when: datetime) -> datetime:
    """The same instant in UTC; a naive time is taken to be UTC already."""
    if when.tzinfo is None:
        return when.replace(tzinfo=UTC)
    return when.astimezone(UTC)


def iso(when: datetime | None) -> str | None:
    """``2026-11-27T14:15:00Z`` (seconds precision), or None."""
    if when is None:
        return None
    return utc(when).strftime("%Y-%m-%dT%H:%M:%SZ")


def human(when: datetime | None, missing: str = "an unknown time") -> str:
    """``2026-11-27 14:15 UTC`` for text meant for people."""
    if when is None:
        return missing
    return utc(when).strftime("%Y-%m-%d %H:%M UTC")


def clock_time(when: datetime, now: datetime) -> str:
    """``14:15 UTC`` when ``when`` falls on the same UTC day as ``now``, else with the date."""
    when_u, now_u = utc(when), utc(now)
    if when_u.date() == now_u.date():
        return when_u.strftime("%H:%M UTC")
    return human(when_u)


def duration(delta: timedelta) -> str:
    """A rough, readable length of time: ``45 seconds``, ``12 minutes``, ``3 hours``, ``16 days``."""
    seconds = max(0, int(delta.total_seconds()))
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            n = seconds // size
            return f"{n} {unit}{'' if n == 1 else 's'}"
    return f"{seconds} second{'' if seconds == 1 else 's'}"


def since(when: datetime, now: datetime) -> timedelta:
    return utc(now) - utc(when)
