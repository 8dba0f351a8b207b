"""Findings together: no contradictions, the right one wins, and no false alarms."""

from __future__ import annotations

import pytest

from troubleshooting import ConnectionFacts, SubscriptionFacts, diagnose

from .builders import (
    CALLBACK,
    ago,
    attempt,
    budgets,
    good_subscription,
    healthy,
    later,
    not_connected,
    unknown,
)

COMBINATIONS: list[tuple[str, ConnectionFacts, tuple[str, ...]]] = [
    (
        "needs re-authorization while the budget is near its limit",
        healthy(status="needs_reauth", status_changed_at=ago(hours=1), budgets=budgets(read_15=90)),
        ("needs_reauth", "rate_limited"),
    ),
    (
        "no activity read explains the silence: no webhook_silent",
        healthy(
            granted_scopes=frozenset({"read", "activity:write", "profile:read_all"}),
            last_event_at=None,
            connected_at=ago(days=40),
            app_last_event_at=ago(hours=1),
        ),
        ("missing_permissions",),
    ),
    (
        "write missing and silent: both (activity read is there, events should come)",
        healthy(
            granted_scopes=frozenset({"read", "activity:read_all", "profile:read_all"}),
            last_event_at=ago(days=30),
        ),
        ("missing_permissions", "webhook_silent"),
    ),
    (
        "revoked with the refresh error that confirmed it: never needs_reauth",
        healthy(
            status="revoked",
            status_changed_at=ago(hours=3),
            last_refresh_error_kind="grant_dead",
            last_refresh_error="400 RefreshToken invalid",
            last_refresh_error_at=ago(hours=3),
            consecutive_refresh_failures=1,
        ),
        ("revoked",),
    ),
    (
        "not connected with a stale transient refresh error: no token finding",
        not_connected(
            last_refresh_error_kind="transient",
            last_refresh_error="timeout",
            last_refresh_error_at=ago(days=5),
            consecutive_refresh_failures=6,
            token_expires_at=ago(days=5),
        ),
        ("not_connected",),
    ),
    (
        "not connected with a stale app-credential refresh error: no operator alarm",
        not_connected(
            last_refresh_error_kind="app_credentials_rejected",
            last_refresh_error="401",
            last_refresh_error_at=ago(days=5),
        ),
        ("not_connected",),
    ),
    (
        "needs_reauth with transient refresh errors: the dead grant is the story",
        healthy(
            status="needs_reauth",
            status_changed_at=ago(hours=1),
            last_refresh_error_kind="transient",
            last_refresh_error_at=ago(minutes=5),
            consecutive_refresh_failures=3,
            granted_scopes=frozenset({"read"}),
        ),
        ("needs_reauth",),
    ),
    (
        "capacity reached while the user is connected: irrelevant to them",
        healthy(app_athlete_capacity=5, connected_athletes=5),
        ("healthy",),
    ),
    (
        "abandoned attempt and a full app: the cause first, then the symptom",
        not_connected(
            app_athlete_capacity=1,
            connected_athletes=1,
            last_attempt=attempt("pending", started=ago(hours=1), finished=False),
        ),
        ("app_capacity_reached", "authorization_failed", "not_connected"),
    ),
    (
        "a failed attempt before the current connection does not count",
        healthy(
            status="needs_reauth",
            status_changed_at=ago(hours=1),
            connected_at=ago(days=3),
            last_attempt=attempt("denied", started=ago(days=4)),
        ),
        ("needs_reauth",),
    ),
    (
        "an app rejection fixed since (a refresh worked afterwards)",
        healthy(
            last_attempt=attempt("app_rejected", "401", started=ago(days=40)),
            connected_at=ago(days=50),
            last_refresh_at=ago(hours=1),
        ),
        ("healthy",),
    ),
    (
        "webhook missing hides webhook_silent",
        healthy(subscription=good_subscription(exists=False, callback_url=None), last_event_at=ago(days=30)),
        ("webhook_missing",),
    ),
    (
        "unknown user while the subscription is missing: app problem still shown",
        unknown(subscription=good_subscription(exists=False, callback_url=None)),
        ("webhook_missing", "unknown_user"),
    ),
    (
        "Strava not configured: no webhook findings at all",
        healthy(strava_configured=False, subscription=None, last_event_at=ago(days=30)),
        ("healthy",),
    ),
    (
        "subscription check failed: no webhook_missing",
        healthy(
            subscription=SubscriptionFacts(
                checked=False,
                exists=None,
                callback_url=None,
                expected_callback_url=CALLBACK,
                check_error="timeout",
            )
        ),
        ("healthy",),
    ),
    (
        "budget near and this user's jobs waiting: one warning naming both",
        healthy(
            budgets=budgets(read_15=97),
            user_jobs_queued=1,
            user_jobs_waiting_for_window=1,
            next_window_at=later(minutes=10),
        ),
        ("rate_limited",),
    ),
    (
        "token refresh failing and near the limit",
        healthy(
            last_refresh_error_kind="rate_limited",
            last_refresh_error="429",
            last_refresh_error_at=ago(minutes=1),
            consecutive_refresh_failures=2,
            budgets=budgets(overall_15=200),
        ),
        ("rate_limited", "token_refresh_failing"),
    ),
]


@pytest.mark.parametrize(
    ("facts", "expected"), [(f, e) for _, f, e in COMBINATIONS], ids=[n for n, _, _ in COMBINATIONS]
)
def test_combination(facts: ConnectionFacts, expected: tuple[str, ...]) -> None:
    assert diagnose(facts).ids == expected


NOTHING_WRONG: list[tuple[str, ConnectionFacts]] = [
    ("the healthy baseline", healthy()),
    ("fresh connection, never heard from yet", healthy(connected_at=ago(hours=1), last_event_at=None)),
    (
        "budgets at 79%",
        healthy(budgets=budgets(read_15=79, read_daily=790, overall_15=158, overall_daily=1580)),
    ),
    ("athlete silent 13 days", healthy(last_event_at=ago(days=13))),
    (
        "pending attempt 2 minutes old while connected",
        healthy(last_attempt=attempt("pending", started=ago(minutes=2), finished=False)),
    ),
    (
        "events from nobody at all",
        healthy(last_event_at=None, app_last_event_at=None, connected_at=ago(days=60)),
    ),
    (
        "athlete silent a long time, but nobody else heard since either",
        healthy(last_event_at=ago(days=30), app_last_event_at=ago(days=30)),
    ),
    ("no rate-limit header seen yet", healthy(budgets=budgets(None, None, None, None))),
    (
        "an old refresh error cleared by a later successful refresh",
        healthy(
            last_refresh_error_kind="transient",
            last_refresh_error="timeout",
            last_refresh_error_at=ago(hours=3),
            last_refresh_at=ago(hours=2),
            consecutive_refresh_failures=0,
        ),
    ),
    (
        "an old failed registration, subscription fine now",
        healthy(
            subscription=good_subscription(
                last_registration_outcome="failed", last_registration_error="timeout"
            )
        ),
    ),
    (
        "jobs queued but none waiting for a window",
        healthy(user_jobs_queued=4, user_jobs_waiting_for_window=0),
    ),
    (
        "a failed reconnect attempt while the connection still works",
        healthy(last_attempt=attempt("denied", started=ago(minutes=5))),
    ),
    ("no capacity configured", healthy(app_athlete_capacity=None)),
]


@pytest.mark.parametrize("facts", [f for _, f in NOTHING_WRONG], ids=[n for n, _ in NOTHING_WRONG])
def test_nothing_wrong_gives_only_healthy(facts: ConnectionFacts) -> None:
    d = diagnose(facts)
    assert d.ids == ("healthy",)
    assert d.severity == "ok" and d.healthy


def test_recent_pending_attempt_while_not_connected_is_not_a_failure() -> None:
    d = diagnose(not_connected(last_attempt=attempt("pending", started=ago(minutes=2), finished=False)))
    assert d.ids == ("not_connected",)


def test_thresholds_are_settings() -> None:
    from troubleshooting import Thresholds

    facts = healthy(budgets=budgets(read_15=60), last_event_at=ago(days=8))
    assert diagnose(facts).ids == ("healthy",)
    strict = Thresholds(rate_limit_warn_pct=50, webhook_silent_days=7)
    assert diagnose(facts, strict).ids == ("rate_limited", "webhook_silent")


def test_abandonment_threshold_is_a_setting() -> None:
    from troubleshooting import Thresholds

    facts = not_connected(last_attempt=attempt("pending", started=ago(minutes=10), finished=False))
    assert "authorization_failed" not in diagnose(facts).ids
    assert "authorization_failed" in diagnose(facts, Thresholds(attempt_abandoned_after_s=300)).ids


def test_refresh_failure_count_threshold() -> None:
    from troubleshooting import Thresholds

    facts = healthy(
        last_refresh_error_kind="transient",
        last_refresh_error_at=ago(minutes=1),
        consecutive_refresh_failures=1,
    )
    assert "token_refresh_failing" in diagnose(facts).ids
    assert diagnose(facts, Thresholds(refresh_failures_before_warning=3)).ids == ("healthy",)
