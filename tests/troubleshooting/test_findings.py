"""One case per finding (and per cause of a finding): id, severity, actions, and the concrete facts."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from troubleshooting import ARTICLE_ANCHORS, AUDIENCES, ConnectionFacts, diagnose

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


@dataclass(frozen=True)
class Case:
    name: str
    facts: ConnectionFacts
    finding: str
    severity: str
    actions: tuple[str, ...]
    audience: str
    detail_has: tuple[str, ...] = ()


LINK = ("send_connect_link",)

CASES = [
    Case(
        "unknown user",
        unknown("bob@example.com"),
        "unknown_user",
        "warning",
        LINK,
        "user",
        ("bob@example.com",),
    ),
    Case("unknown athlete id", unknown("987654"), "unknown_user", "warning", LINK, "user", ("987654",)),
    Case(
        "not connected after an operator disconnect",
        not_connected(status_changed_at=ago(days=3), status_reason="disconnected by cli:ops"),
        "not_connected",
        "warning",
        LINK,
        "user",
        ("alice@example.com", "disconnected by cli:ops", "2026-11-24 14:05 UTC"),
    ),
    Case(
        "never connected",
        not_connected(),
        "not_connected",
        "warning",
        LINK,
        "user",
        ("no connection on record",),
    ),
    Case(
        "authorization denied",
        not_connected(last_attempt=attempt("denied", "access_denied returned by Strava")),
        "authorization_failed",
        "error",
        LINK,
        "user",
        ("access_denied returned by Strava", "2026-11-27 13:35 UTC"),
    ),
    Case(
        "code exchange failed",
        not_connected(last_attempt=attempt("exchange_failed", "Strava answered 400: code is invalid")),
        "authorization_failed",
        "error",
        LINK,
        "user",
        ("Strava answered 400: code is invalid",),
    ),
    Case(
        "athlete linked to another FitGlue user",
        not_connected(last_attempt=attempt("athlete_conflict", "athlete 777 belongs to carol@example.com")),
        "authorization_failed",
        "error",
        LINK,
        "user",
        ("athlete 777 belongs to carol@example.com", "different FitGlue user"),
    ),
    Case(
        "state did not match",
        not_connected(last_attempt=attempt("state_invalid", "state cookie missing")),
        "authorization_failed",
        "error",
        LINK,
        "user",
        ("state cookie missing",),
    ),
    Case(
        "attempt never came back (what Strava's athlete limit page looks like)",
        not_connected(last_attempt=attempt("pending", started=ago(minutes=40), finished=False)),
        "authorization_failed",
        "error",
        LINK,
        "user",
        ("40 minutes", "limit of connected athletes exceeded"),
    ),
    Case(
        "attempt after needs_reauth failed too",
        healthy(
            status="needs_reauth",
            status_changed_at=ago(days=2),
            last_attempt=attempt("denied", "access_denied"),
        ),
        "authorization_failed",
        "error",
        LINK,
        "user",
        ("access_denied",),
    ),
    Case(
        "app capacity used up",
        not_connected(app_athlete_capacity=1, connected_athletes=1),
        "app_capacity_reached",
        "error",
        (),
        "operator",
        ("capacity is 1", "1 athlete(s) are connected"),
    ),
    Case(
        "no activity read",
        healthy(granted_scopes=frozenset({"read", "activity:write", "profile:read_all"})),
        "missing_permissions",
        "error",
        LINK,
        "user",
        ("activity read", "no events", "source"),
    ),
    Case(
        "no activity write",
        healthy(granted_scopes=frozenset({"read", "activity:read_all", "profile:read_all"})),
        "missing_permissions",
        "error",
        LINK,
        "user",
        ("activity:write", "destination"),
    ),
    Case(
        "no profile read: a warning only",
        healthy(granted_scopes=frozenset({"read", "activity:read_all", "activity:write"})),
        "missing_permissions",
        "warning",
        LINK,
        "user",
        ("profile:read_all",),
    ),
    Case(
        "activity:read without read_all: private activities invisible",
        healthy(granted_scopes=frozenset({"read", "activity:read", "activity:write", "profile:read_all"})),
        "missing_permissions",
        "warning",
        LINK,
        "user",
        ("activity:read_all", "private"),
    ),
    Case(
        "everything missing in one finding",
        healthy(granted_scopes=frozenset({"read"})),
        "missing_permissions",
        "error",
        LINK,
        "user",
        ("activity read", "activity:write", "profile:read_all", "granted: read"),
    ),
    Case(
        "needs re-authorization",
        healthy(
            status="needs_reauth",
            status_changed_at=ago(hours=5),
            status_reason="Strava said 400 RefreshToken invalid",
            last_refresh_error_kind="grant_dead",
            last_refresh_error_at=ago(hours=5),
        ),
        "needs_reauth",
        "error",
        LINK,
        "user",
        ("Strava said 400 RefreshToken invalid", "2026-11-27 09:05 UTC", "12345"),
    ),
    Case(
        "revoked by the athlete",
        healthy(
            status="revoked",
            status_changed_at=ago(days=1),
            status_reason="deauthorization event confirmed",
            granted_scopes=None,
            token_expires_at=None,
        ),
        "revoked",
        "warning",
        LINK,
        "user",
        ("deauthorization event confirmed", "2026-11-26 14:05 UTC", "12345"),
    ),
    Case(
        "refresh failing transiently",
        healthy(
            last_refresh_error_kind="transient",
            last_refresh_error="timed out after 10 s",
            last_refresh_error_at=ago(minutes=10),
            consecutive_refresh_failures=3,
            last_refresh_at=ago(hours=5),
            token_expires_at=later(minutes=50),
        ),
        "token_refresh_failing",
        "warning",
        ("refresh_token",),
        "support",
        ("timed out after 10 s", "3 attempt", "2026-11-27 14:55 UTC"),
    ),
    Case(
        "refresh failing and the token already expired",
        healthy(
            last_refresh_error_kind="rate_limited",
            last_refresh_error="429 Too Many Requests",
            last_refresh_error_at=ago(minutes=10),
            consecutive_refresh_failures=4,
            last_refresh_at=ago(hours=7),
            token_expires_at=ago(minutes=30),
        ),
        "token_refresh_failing",
        "error",
        ("refresh_token",),
        "support",
        ("429 Too Many Requests", "ran out", "rate limit"),
    ),
    Case(
        "app credentials rejected on refresh",
        healthy(
            last_refresh_error_kind="app_credentials_rejected",
            last_refresh_error="401 Application/client_secret invalid",
            last_refresh_error_at=ago(minutes=20),
            consecutive_refresh_failures=2,
        ),
        "strava_app_misconfigured",
        "error",
        (),
        "operator",
        ("401 Application/client_secret invalid", "token refresh", "every user"),
    ),
    Case(
        "app credentials rejected while connecting",
        not_connected(last_attempt=attempt("app_rejected", "401 Application/client_id invalid")),
        "strava_app_misconfigured",
        "error",
        (),
        "operator",
        ("401 Application/client_id invalid", "connection attempt"),
    ),
    Case(
        "no push subscription",
        healthy(subscription=good_subscription(exists=False, callback_url=None)),
        "webhook_missing",
        "error",
        ("reregister_webhook",),
        "support",
        ("no push subscription",),
    ),
    Case(
        "subscription points elsewhere",
        healthy(subscription=good_subscription(callback_url="https://old.example/hook")),
        "webhook_missing",
        "error",
        ("reregister_webhook",),
        "support",
        ("https://old.example/hook", CALLBACK),
    ),
    Case(
        "subscription missing after a failed registration",
        healthy(
            subscription=good_subscription(
                exists=False,
                callback_url=None,
                last_registration_outcome="failed",
                last_registration_error="callback did not echo hub.challenge",
                last_registration_at=ago(hours=1),
            )
        ),
        "webhook_missing",
        "error",
        ("reregister_webhook",),
        "support",
        ("callback did not echo hub.challenge", "2026-11-27 13:05 UTC"),
    ),
    Case(
        "a new installation: nobody connected yet, no registration tried",
        not_connected(connected_athletes=0, subscription=good_subscription(
            exists=False, callback_url=None, last_registration_outcome=None)),
        "webhook_missing",
        "info",
        ("reregister_webhook",),
        "support",
        ("Nobody has connected Strava", "first successful Connect"),
    ),
    Case(
        "nobody connected now, but a registration was tried before: missing",
        not_connected(connected_athletes=0, subscription=good_subscription(
            exists=False, callback_url=None, last_registration_outcome="ok", last_registration_at=ago(days=3))),
        "webhook_missing",
        "error",
        ("reregister_webhook",),
        "support",
        ("no push subscription",),
    ),
    Case(
        "others connected, this user not yet: missing",
        not_connected(connected_athletes=3, subscription=good_subscription(
            exists=False, callback_url=None, last_registration_outcome=None)),
        "webhook_missing",
        "error",
        ("reregister_webhook",),
        "support",
        ("no push subscription",),
    ),
    Case(
        "athlete silent while others are heard",
        healthy(last_event_at=ago(days=20), app_last_event_at=ago(hours=1)),
        "webhook_silent",
        "info",
        (),
        "support",
        ("20 days", "2026-11-07 14:05 UTC", "2026-11-27 13:05 UTC"),
    ),
    Case(
        "never heard since connecting long ago, others heard",
        healthy(last_event_at=None, connected_at=ago(days=15), app_last_event_at=ago(hours=1)),
        "webhook_silent",
        "info",
        (),
        "support",
        ("15 days", "none since connecting"),
    ),
    Case(
        "outbound events parked for this user",
        healthy(events_undelivered=3, events_undelivered_since=ago(hours=2),
                events_last_error="the receiver answered HTTP 503"),
        "events_undelivered",
        "warning",
        ("retry_events",),
        "operator",
        ("last 3 event(s)", "2026-11-27 12:05 UTC", "HTTP 503"),
    ),
    Case(
        "read budget near its 15-minute limit",
        healthy(budgets=budgets(read_15=85)),
        "rate_limited",
        "warning",
        (),
        "operator",
        ("85 of 100", "85%", "read (non-upload) budget", "15-minute window", "14:15 UTC"),
    ),
    Case(
        "daily overall budget used up",
        healthy(budgets=budgets(overall_daily=2000)),
        "rate_limited",
        "error",
        (),
        "operator",
        ("2000 of 2000", "daily window", "2026-11-28 00:00 UTC"),
    ),
    Case(
        "user's jobs waiting for the next window",
        healthy(user_jobs_queued=3, user_jobs_waiting_for_window=2, next_window_at=later(minutes=10)),
        "rate_limited",
        "info",
        (),
        "none",
        ("2 jobs of this user (3 queued in all) wait", "14:15 UTC"),
    ),
    Case(
        "all good", healthy(), "healthy", "ok", (), "none", ("alice@example.com", "12345", "activity:write")
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_finding(case: Case) -> None:
    diagnosis = diagnose(case.facts)
    finding = diagnosis.finding(case.finding)
    assert finding is not None, f"expected {case.finding}, got {diagnosis.ids}"
    assert finding.severity == case.severity
    assert finding.actions == case.actions
    assert finding.audience == case.audience
    assert finding.audience in AUDIENCES
    assert finding.article in ARTICLE_ANCHORS
    for text in case.detail_has:
        assert text in finding.detail, f"{text!r} not in {finding.detail!r}"
    for part in (finding.title, finding.detail, *finding.remedy):
        assert "{" not in part and "}" not in part and "  " not in part
    assert finding.remedy, "every finding says what to do"


def test_every_finding_id_has_a_case() -> None:
    from troubleshooting import FINDING_IDS

    assert {c.finding for c in CASES} == set(FINDING_IDS)


def test_authorization_failed_for_app_rejection_is_an_operator_problem() -> None:
    d = diagnose(not_connected(last_attempt=attempt("app_rejected", "401 Application invalid")))
    assert d.ids == ("strava_app_misconfigured", "authorization_failed", "not_connected")
    failed = d.finding("authorization_failed")
    assert failed is not None and failed.audience == "operator"
    assert "did nothing wrong" in failed.detail


def test_remedy_mentions_reset_time_for_rate_limits() -> None:
    d = diagnose(healthy(budgets=budgets(read_15=95)))
    finding = d.finding("rate_limited")
    assert finding is not None
    assert any("14:15 UTC" in step for step in finding.remedy)


def test_capacity_remedy_names_the_operator_steps() -> None:
    d = diagnose(not_connected(app_athlete_capacity=10, connected_athletes=10))
    finding = d.finding("app_capacity_reached")
    assert finding is not None
    text = " ".join(finding.remedy)
    assert "strava.com/settings/api" in text
    assert "FITGLUE_STRAVA_ATHLETE_CAPACITY" in text


def test_revoked_remedy_covers_both_sides() -> None:
    d = diagnose(healthy(status="revoked", status_changed_at=ago(days=1)))
    finding = d.finding("revoked")
    assert finding is not None
    text = " ".join(finding.remedy)
    assert "My Apps" in text and "Dashboard → Connections" in text


def test_single_waiting_job_reads_naturally() -> None:
    d = diagnose(
        healthy(user_jobs_queued=1, user_jobs_waiting_for_window=1, next_window_at=later(minutes=10))
    )
    finding = d.finding("rate_limited")
    assert finding is not None
    assert "1 job of this user (1 queued in all) waits" in finding.detail
    assert "resumes by itself at 14:15 UTC" in finding.detail


def test_package_is_pure() -> None:
    import ast
    from pathlib import Path

    import troubleshooting

    for path in Path(troubleshooting.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                for name in names:
                    root = name.split(".")[0]
                    assert root not in {"service", "bot", "socket", "requests", "aiohttp", "sqlalchemy"}, path
