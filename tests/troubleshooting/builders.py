"""Facts builders for the troubleshooting tests: a healthy connection, changed one fact at a time."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from troubleshooting import AttemptFacts, BudgetWindow, ConnectionFacts, SubscriptionFacts

NOW = datetime(2026, 11, 27, 14, 5, 0, tzinfo=UTC)
NEXT_15 = datetime(2026, 11, 27, 14, 15, 0, tzinfo=UTC)
MIDNIGHT = datetime(2026, 11, 28, 0, 0, 0, tzinfo=UTC)
CALLBACK = "https://fitglue.example/webhooks/strava"
ALL_SCOPES = frozenset({"read", "activity:read_all", "activity:write", "profile:read_all"})


def ago(**kw: float) -> datetime:
    return NOW - timedelta(**kw)


def later(**kw: float) -> datetime:
    return NOW + timedelta(**kw)


def good_subscription(**kw: Any) -> SubscriptionFacts:
    base = SubscriptionFacts(
        checked=True,
        exists=True,
        callback_url=CALLBACK,
        expected_callback_url=CALLBACK,
        last_registration_outcome="ok",
    )
    return replace(base, **kw)


def budgets(
    read_15: int | None = 10,
    read_daily: int | None = 120,
    overall_15: int | None = 12,
    overall_daily: int | None = 150,
) -> tuple[BudgetWindow, ...]:
    return (
        BudgetWindow("overall", "15min", 200, overall_15, NEXT_15),
        BudgetWindow("overall", "daily", 2000, overall_daily, MIDNIGHT),
        BudgetWindow("read", "15min", 100, read_15, NEXT_15),
        BudgetWindow("read", "daily", 1000, read_daily, MIDNIGHT),
    )


def healthy(**kw: Any) -> ConnectionFacts:
    base = ConnectionFacts(
        now=NOW,
        who="alice@example.com",
        email="alice@example.com",
        status="connected",
        athlete_id=12345,
        granted_scopes=ALL_SCOPES,
        token_expires_at=later(hours=4),
        connected_at=ago(days=30),
        last_refresh_at=ago(hours=2),
        last_attempt=AttemptFacts(ago(days=30), ago(days=30), "connected", None),
        app_athlete_capacity=10,
        connected_athletes=5,
        subscription=good_subscription(),
        last_event_at=ago(days=2),
        app_last_event_at=ago(hours=1),
        budgets=budgets(),
    )
    return replace(base, **kw)


def not_connected(**kw: Any) -> ConnectionFacts:
    base = healthy(
        status="not_connected",
        granted_scopes=None,
        token_expires_at=None,
        connected_at=None,
        last_refresh_at=None,
        last_attempt=None,
        last_event_at=None,
        athlete_id=None,
    )
    return replace(base, **kw)


def unknown(who: str = "bob@example.com", **kw: Any) -> ConnectionFacts:
    base = not_connected(who=who, email=None, status="unknown_user")
    return replace(base, **kw)


def attempt(
    outcome: str, reason: str | None = None, started: datetime | None = None, finished: bool = True
) -> AttemptFacts:
    started = started or ago(minutes=30)
    return AttemptFacts(started, started + timedelta(seconds=40) if finished else None, outcome, reason)
