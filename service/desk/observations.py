"""Gathering what we know about one user's Strava connection: the input of a diagnosis.

Everything comes from the database in two statements (``fact_queries``), plus one live look at
the app's push subscription at Strava (``service.subscription.cache``), taken at the same time. Nothing
gathered here is a secret: no token, no client secret, no Connect link; free text is scrubbed.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from service.core.inputs import BadInput, parse_who
from service.core.redact import scrub_text
from service.core.runtime import Runtime
from service.core.settings import Settings
from service.db.models import OAuthAttempt, StravaConnection, User, WebhookRegistration
from service.desk.fact_queries import budget_windows, last_registration, rate_limit_rows, read_fact_rows
from service.ratelimit.windows import next_quarter
from service.subscription.cache import SubscriptionLook, subscription_cache
from troubleshooting import AttemptFacts, ConnectionFacts, SubscriptionFacts, Thresholds
from troubleshooting.permissions import grant_verdict, parse_scopes
from troubleshooting.vocabulary import (
    ATTEMPT_OUTCOMES,
    REFRESH_ERROR_KINDS,
    AttemptOutcome,
    ConnectionStatus,
    RefreshErrorKind,
)

# `who` is neither a well-formed e-mail address nor a Strava athlete id (the rule is service.core.inputs').
BadWho = BadInput


def thresholds_from(settings: Settings) -> Thresholds:
    return Thresholds(rate_limit_warn_pct=settings.rate_limit_warn_pct,
                      webhook_silent_days=settings.webhook_silent_days)


def _latest(*values: datetime | None) -> datetime | None:
    known = [v for v in values if v is not None]
    return max(known) if known else None


def _attempt_facts(attempt: OAuthAttempt | None) -> AttemptFacts | None:
    if attempt is None:
        return None
    outcome = AttemptOutcome(attempt.outcome) if attempt.outcome in ATTEMPT_OUTCOMES else AttemptOutcome.EXCHANGE_FAILED
    return AttemptFacts(started_at=attempt.started_at, finished_at=attempt.finished_at, outcome=outcome,
                        reason=scrub_text(attempt.reason) if attempt.reason else None)


def _registration_outcome(outcome: str | None) -> str | None:
    if outcome is None:
        return None
    # Registration records say how it went (e.g. unchanged, repaired, failed); only failure matters here.
    return "failed" if outcome.lower() in ("failed", "error") else "ok"


def subscription_facts(look: SubscriptionLook, settings: Settings,
                       registration: WebhookRegistration | None) -> SubscriptionFacts:
    return SubscriptionFacts(
        checked=look.checked,
        exists=look.exists,
        callback_url=look.callback_url,
        expected_callback_url=settings.webhook_callback_url,
        check_error=look.error,
        last_registration_outcome=_registration_outcome(registration.outcome) if registration else None,
        last_registration_error=scrub_text(registration.error) if registration and registration.error else None,
        last_registration_at=registration.at if registration else None,
    )


def connected_reason(granted: frozenset[str] | None) -> str | None:
    """A connected connection's status reason, from the same verdict the findings use.

    Read from the grant rather than the stored text: rows written before the verdict was one
    function say "every needed permission" beside a grant without profile:read_all.
    """
    return grant_verdict(granted).status_reason if granted is not None else None


async def gather_facts(rt: Runtime, who: str) -> ConnectionFacts:
    """Everything a diagnosis of `who` (an e-mail or a Strava athlete id) rests on. Raises BadWho."""
    parsed = parse_who(who)
    probe = subscription_cache(rt)
    look_task = asyncio.ensure_future(probe.look())
    try:
        facts = await _gather_from_db(rt, who.strip(), parsed.email, parsed.athlete_id)
    except BaseException:
        look_task.cancel()
        # Its clean-up ends here, not after whatever it uses is closed (service.core.wind_down).
        await asyncio.gather(look_task, return_exceptions=True)
        raise
    look, registration = await look_task, facts.pop("_registration")
    if registration is not None and look.checked and registration.at >= look.at:
        # The subscription was (re-)registered since our cached look: that look may be stale.
        probe.invalidate()
        look = await probe.look()
    return ConnectionFacts(**facts, subscription=subscription_facts(look, rt.settings, registration),
                           strava_configured=look.configured)


async def _gather_from_db(rt: Runtime, who: str, email: str | None, athlete_id: int | None) -> dict[str, Any]:
    """The facts from the database, as ConnectionFacts keywords, plus ``_registration`` (the last
    WebhookRegistration, or None) for the subscription facts."""
    now = rt.clock.now()
    found, wide = await read_fact_rows(rt, email, athlete_id, now)
    registration = last_registration(wide)
    common: dict[str, Any] = {
        "now": now,
        "who": who,
        "app_athlete_capacity": rt.settings.strava_athlete_capacity,
        "connected_athletes": int(wide["connected"] or 0),
        "app_last_event_at": wide["app_last_event"],
        "budgets": budget_windows(rate_limit_rows(wide), now),
        "_registration": registration,
    }
    if found is None:
        return {**common, "email": None, "status": ConnectionStatus.UNKNOWN_USER}
    conn: StravaConnection | None = found[1]
    facts = {**common, **_user_facts(found, now)}
    if conn is not None:
        facts.update(_connection_facts(conn, facts["status"], found.athlete_last_event))
    return facts


def _user_facts(found: Any, now: datetime) -> dict[str, Any]:
    """A known user's facts from their row (``fact_queries.user_query``): status, last attempt, jobs."""
    user: User = found[0]
    conn: StravaConnection | None = found[1]
    facts: dict[str, Any] = {
        "email": user.email,
        "status": conn.status if conn is not None else ConnectionStatus.NOT_CONNECTED,
        "last_attempt": _attempt_facts(found[2]),
        "user_jobs_queued": int(found.jobs_queued or 0),
        "user_jobs_waiting_for_window": int(found.jobs_waiting or 0),
        "user_jobs_failed": int(found.jobs_failed or 0),
        "last_job_failure": scrub_text(found.last_job_failure) if found.last_job_failure else None,
        "events_undelivered": int(found.events_undelivered or 0),
        "events_undelivered_since": found.events_undelivered_since,
        "events_last_error": scrub_text(found.events_last_error) if found.events_last_error else None,
    }
    if facts["user_jobs_waiting_for_window"]:
        facts["next_window_at"] = found.next_run or next_quarter(now)
    return facts


def _connection_facts(conn: StravaConnection, status: str, athlete_last_event: datetime | None) -> dict[str, Any]:
    """The facts read from the user's connection row (and their athlete's newest event)."""
    kind = conn.last_refresh_error_kind
    granted = parse_scopes(conn.granted_scopes) if conn.granted_scopes is not None else None
    return dict(
        athlete_id=conn.athlete_id,
        granted_scopes=granted,
        token_expires_at=conn.expires_at,
        connected_at=conn.connected_at,
        last_refresh_at=conn.last_refresh_at,
        # An error kind we do not know (a newer writer) still counts as a refresh problem.
        last_refresh_error_kind=(kind if kind in REFRESH_ERROR_KINDS else RefreshErrorKind.TRANSIENT) if kind else None,
        last_refresh_error=scrub_text(conn.last_refresh_error) if conn.last_refresh_error else None,
        last_refresh_error_at=conn.last_refresh_error_at,
        consecutive_refresh_failures=conn.refresh_failures or 0,
        status_reason=(connected_reason(granted) if status == ConnectionStatus.CONNECTED else None) or conn.status_reason,
        status_changed_at=conn.status_changed_at,
        last_event_at=_latest(conn.last_event_at, athlete_last_event),
    )
