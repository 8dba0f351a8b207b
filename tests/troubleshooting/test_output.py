"""The JSON shape of a diagnosis (DESIGN.md) and the one-line summary."""

from __future__ import annotations

import json

from troubleshooting import SubscriptionFacts, diagnose, summary_line

from .builders import CALLBACK, ago, attempt, budgets, healthy, not_connected, unknown

FINDING_KEYS = {"id", "severity", "title", "detail", "remedy", "actions", "article", "audience"}


def test_to_dict_shape_is_exact_and_json_safe() -> None:
    d = diagnose(healthy(budgets=budgets(read_15=90), last_attempt=attempt("connected")))
    out = d.to_dict()
    assert list(out) == ["email", "athlete_id", "status", "findings", "facts"]
    assert out["email"] == "alice@example.com" and out["athlete_id"] == 12345 and out["status"] == "connected"
    for finding in out["findings"]:
        assert set(finding) == FINDING_KEYS
        assert isinstance(finding["remedy"], list) and isinstance(finding["actions"], list)
    text = json.dumps(out)
    assert json.loads(text) == out


def test_facts_are_observations_in_json_form() -> None:
    facts = diagnose(healthy()).to_dict()["facts"]
    assert facts["now"] == "2026-11-27T14:05:00Z"
    assert facts["token_expires_at"] == "2026-11-27T18:05:00Z"
    assert facts["granted_scopes"] == ["activity:read_all", "activity:write", "profile:read_all", "read"]
    assert facts["subscription"]["checked"] is True and facts["subscription"]["callback_matches"] is True
    assert facts["budgets"][0] == {
        "budget": "overall",
        "window": "15min",
        "limit": 200,
        "usage": 12,
        "resets_at": "2026-11-27T14:15:00Z",
    }
    assert facts["last_attempt"]["outcome"] == "connected"
    assert facts["thresholds"]["rate_limit_warn_pct"] == 80
    assert "token" not in {k for k in facts if k.endswith("_token")}


def test_facts_say_when_the_subscription_was_not_checked() -> None:
    not_configured = diagnose(healthy(strava_configured=False, subscription=None)).to_dict()["facts"]
    assert not_configured["subscription"] == {"checked": False, "note": "Strava is not configured"}
    failed = diagnose(
        healthy(
            subscription=SubscriptionFacts(
                checked=False,
                exists=None,
                callback_url=None,
                expected_callback_url=CALLBACK,
                check_error="timeout",
            )
        )
    ).to_dict()["facts"]["subscription"]
    assert failed["checked"] is False and failed["check_error"] == "timeout" and "note" in failed
    assert failed["callback_matches"] is None


def test_unknown_user_dict() -> None:
    out = diagnose(unknown("bob@example.com")).to_dict()
    assert out["email"] is None and out["athlete_id"] is None and out["status"] == "unknown_user"
    assert out["facts"]["who"] == "bob@example.com"


def test_summary_lines() -> None:
    assert summary_line(diagnose(healthy())) == "alice@example.com — Strava: connected, healthy"
    assert (
        summary_line(diagnose(healthy(status="needs_reauth", status_changed_at=ago(hours=1))))
        == "alice@example.com — Strava: needs re-authorization"
    )
    assert (
        summary_line(diagnose(unknown("bob@example.com"))) == "bob@example.com — Strava: no such FitGlue user"
    )
    line = summary_line(diagnose(healthy(granted_scopes=frozenset({"read", "activity:read_all"}))))
    assert (
        line
        == "alice@example.com — Strava: connected · 1 problem, most severe: Strava permissions are missing"
    )
    line = summary_line(diagnose(healthy(last_event_at=ago(days=30))))
    assert line == "alice@example.com — Strava: connected · note: No Strava events from this athlete lately"
    line = summary_line(diagnose(not_connected(last_attempt=attempt("denied"))))
    assert line.startswith("alice@example.com — Strava: not connected · also 1 problem")


def test_summary_line_says_other_problems_come_on_top_of_a_broken_status():
    from datetime import UTC, datetime

    from troubleshooting import ConnectionFacts, SubscriptionFacts, diagnose, summary_line

    facts = ConnectionFacts(now=datetime(2026, 11, 27, 14, 0, tzinfo=UTC), who="bob@example.com",
                            email="bob@example.com", status="needs_reauth", athlete_id=5,
                            subscription=SubscriptionFacts(checked=True, exists=False, callback_url=None,
                                                           expected_callback_url="https://x/webhooks/strava"))
    assert summary_line(diagnose(facts)) == ("bob@example.com — Strava: needs re-authorization · also 1 problem, "
                                             "most severe: Strava push subscription is missing")
