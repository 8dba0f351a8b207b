"""Properties that hold for any facts: ordering, exclusivity, `healthy` alone, JSON-safe output."""

from __future__ import annotations

import json
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from troubleshooting import (
    FINDING_IDS,
    SEVERITY_ORDER,
    STATUSES,
    AttemptFacts,
    BudgetWindow,
    ConnectionFacts,
    SubscriptionFacts,
    diagnose,
)
from troubleshooting.vocabulary import ATTEMPT_OUTCOMES, REFRESH_ERROR_KINDS

from .builders import CALLBACK, MIDNIGHT, NEXT_15, NOW

SCOPES = ["read", "activity:read", "activity:read_all", "activity:write", "profile:read_all"]
offset = st.integers(min_value=-60 * 24 * 60, max_value=60 * 24 * 60).map(
    lambda m: NOW + timedelta(minutes=m)
)
past = st.integers(min_value=0, max_value=60 * 24 * 60).map(lambda m: NOW - timedelta(minutes=m))


@st.composite
def facts(draw: st.DrawFn) -> ConnectionFacts:
    status = draw(st.sampled_from(STATUSES))
    email = None if status == "unknown_user" else "alice@example.com"
    attempt = draw(
        st.none()
        | st.builds(
            AttemptFacts,
            past,
            st.none() | past,
            st.sampled_from(ATTEMPT_OUTCOMES),
            st.none() | st.just("why"),
        )
    )
    subscription = draw(
        st.none()
        | st.builds(
            SubscriptionFacts,
            st.booleans(),
            st.none() | st.booleans(),
            st.sampled_from([None, CALLBACK, "https://elsewhere/x"]),
            st.just(CALLBACK),
            st.none() | st.just("boom"),
            st.sampled_from([None, "ok", "failed"]),
            st.none() | st.just("err"),
        )
    )
    windows = tuple(
        BudgetWindow(b, w, limit, draw(st.none() | st.integers(0, limit + 10)), reset)
        for b, w, limit, reset in (("overall", "15min", 200, NEXT_15), ("read", "daily", 1000, MIDNIGHT))
    )
    return ConnectionFacts(
        now=NOW,
        who="alice@example.com",
        email=email,
        status=status,
        athlete_id=draw(st.none() | st.just(42)),
        granted_scopes=draw(st.none() | st.frozensets(st.sampled_from(SCOPES))),
        token_expires_at=draw(st.none() | offset),
        connected_at=draw(st.none() | past),
        last_refresh_at=draw(st.none() | past),
        last_refresh_error_kind=draw(st.none() | st.sampled_from(REFRESH_ERROR_KINDS)),
        last_refresh_error=draw(st.none() | st.just("error text")),
        last_refresh_error_at=draw(st.none() | past),
        consecutive_refresh_failures=draw(st.integers(0, 5)),
        status_changed_at=draw(st.none() | past),
        last_attempt=attempt,
        app_athlete_capacity=draw(st.none() | st.integers(1, 10)),
        connected_athletes=draw(st.integers(0, 12)),
        subscription=subscription,
        last_event_at=draw(st.none() | past),
        app_last_event_at=draw(st.none() | past),
        budgets=windows,
        user_jobs_queued=draw(st.integers(0, 3)),
        user_jobs_waiting_for_window=draw(st.integers(0, 3)),
        next_window_at=draw(st.none() | st.just(NEXT_15)),
        strava_configured=draw(st.booleans()),
    )


STATUS_FINDINGS = {"unknown_user", "not_connected", "revoked", "needs_reauth"}
CONNECTION_ONLY = {"missing_permissions", "token_refresh_failing", "webhook_silent", "healthy"}


@settings(max_examples=250, deadline=None)
@given(facts())
def test_invariants(f: ConnectionFacts) -> None:
    d = diagnose(f)
    ids = d.ids
    assert ids, "a diagnosis always says something"
    assert len(set(ids)) == len(ids)
    ranks = [(SEVERITY_ORDER.index(x.severity), FINDING_IDS.index(x.id)) for x in d.findings]
    assert ranks == sorted(ranks)
    if "healthy" in ids:
        assert ids == ("healthy",) and f.status == "connected"
    assert all(x.severity != "ok" for x in d.findings if x.id != "healthy")
    status_findings = STATUS_FINDINGS & set(ids)
    assert status_findings == ({f.status} if f.status != "connected" else set())
    if f.status != "connected":
        assert not CONNECTION_ONLY & set(ids)
    else:
        assert not {"app_capacity_reached", "authorization_failed"} & set(ids)
    if not f.strava_configured or f.subscription is None or not f.subscription.checked:
        assert "webhook_missing" not in ids
    if (
        "missing_permissions" in ids
        and f.granted_scopes is not None
        and not (f.granted_scopes & {"activity:read", "activity:read_all"})
    ):
        assert "webhook_silent" not in ids
    json.dumps(d.to_dict())
