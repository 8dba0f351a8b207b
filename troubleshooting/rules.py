"""One small predicate per finding.

Each rule takes the facts and the thresholds and returns None (the finding does not apply) or a
dict of placeholder values for its knowledge entry. The reserved key ``"variant"`` picks one of the
entry's variants (a distinct cause with its own wording or severity); ``"needs"`` lists a grant's
shortfalls, which the engine words from the knowledge file's ``permissions``. The engine supplies the common
placeholders (who, email, athlete_id, status) itself.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from troubleshooting.facts import AttemptFacts, BudgetWindow, ConnectionFacts, Thresholds
from troubleshooting.permissions import grant_verdict
from troubleshooting.timefmt import clock_time, duration, human, since, utc
from troubleshooting.vocabulary import (
    FAILED_ATTEMPT_OUTCOMES,
    AttemptOutcome,
    Budget,
    ConnectionStatus,
    FindingId,
    RefreshErrorKind,
    Severity,
    Window,
)

Values = dict[str, str]
VARIANT = "variant"  # reserved key: the entry's variant to use
NEEDS = "needs"  # reserved key: the grant's shortfalls (vocabulary.Need, space-separated)
Rule = Callable[[ConnectionFacts, Thresholds], Values | None]


_BUDGET_NAMES = {Budget.OVERALL: "overall budget", Budget.READ: "read (non-upload) budget"}
_WINDOW_NAMES = {Window.FIFTEEN_MIN: "15-minute window", Window.DAILY: "daily window"}


# --- helpers -------------------------------------------------------------------------------------


def _after(a: datetime | None, b: datetime | None) -> bool:
    """a is known and strictly later than b (or b is unknown)."""
    return a is not None and (b is None or utc(a) > utc(b))


def refresh_error_is_current(f: ConnectionFacts) -> bool:
    """A refresh error is recorded and no successful refresh came after it."""
    if f.last_refresh_error_kind is None:
        return False
    if f.last_refresh_error_at is None or f.last_refresh_at is None:
        return True
    return utc(f.last_refresh_error_at) >= utc(f.last_refresh_at)


def attempt_superseded(f: ConnectionFacts, attempt: AttemptFacts) -> bool:
    """A connection was made at or after the attempt began, so the attempt no longer matters."""
    return f.connected_at is not None and utc(f.connected_at) >= utc(attempt.started_at)


def _scopes_text(scopes: frozenset[str] | None) -> str:
    if not scopes:
        return "no scopes at all"
    return ", ".join(sorted(scopes))


def _reason(text: str | None, fallback: str = "none recorded") -> str:
    text = (text or "").strip().rstrip(".")
    return text or fallback


# --- status findings -----------------------------------------------------------------------------


def rule_unknown_user(f: ConnectionFacts, t: Thresholds) -> Values | None:
    return {} if f.status == ConnectionStatus.UNKNOWN_USER else None


def rule_not_connected(f: ConnectionFacts, t: Thresholds) -> Values | None:
    if f.status != ConnectionStatus.NOT_CONNECTED:
        return None
    if f.status_changed_at is not None:
        history = f"not connected since {human(f.status_changed_at)}"
        if f.status_reason:
            history += f": {_reason(f.status_reason)}"
    elif f.connected_at is not None:
        history = f"a connection made {human(f.connected_at)} has since ended"
    else:
        history = "no connection on record"
    return {"connection_history": history}


def rule_revoked(f: ConnectionFacts, t: Thresholds) -> Values | None:
    if f.status != ConnectionStatus.REVOKED:
        return None
    return {
        "status_changed_at": human(f.status_changed_at),
        "status_reason": _reason(f.status_reason),
    }


def rule_needs_reauth(f: ConnectionFacts, t: Thresholds) -> Values | None:
    if f.status != ConnectionStatus.NEEDS_REAUTH:
        return None
    return {
        "status_changed_at": human(f.status_changed_at or f.last_refresh_error_at),
        "status_reason": _reason(
            f.status_reason or f.last_refresh_error, "Strava answered that the refresh token is invalid"
        ),
    }


# --- connecting ----------------------------------------------------------------------------------


def rule_authorization_failed(f: ConnectionFacts, t: Thresholds) -> Values | None:
    attempt = f.last_attempt
    if attempt is None or f.status in (ConnectionStatus.CONNECTED, ConnectionStatus.UNKNOWN_USER) or attempt_superseded(f, attempt):
        return None
    age = since(attempt.started_at, f.now)
    values = {
        "attempt_started_at": human(attempt.started_at),
        "attempt_age": duration(age),
        "attempt_reason": _reason(attempt.reason),
    }
    if attempt.outcome in FAILED_ATTEMPT_OUTCOMES:
        return {**values, VARIANT: attempt.outcome}
    if (
        attempt.outcome == AttemptOutcome.PENDING
        and attempt.finished_at is None
        and age > timedelta(seconds=t.attempt_abandoned_after_s)
    ):
        return {**values, VARIANT: "abandoned"}
    return None


def rule_app_capacity_reached(f: ConnectionFacts, t: Thresholds) -> Values | None:
    cap = f.app_athlete_capacity
    if cap is None or f.status == ConnectionStatus.CONNECTED or f.connected_athletes < cap:
        return None
    return {"athlete_capacity": str(cap), "connected_athletes": str(f.connected_athletes)}


def rule_strava_app_misconfigured(f: ConnectionFacts, t: Thresholds) -> Values | None:
    if (
        f.status in (ConnectionStatus.CONNECTED, ConnectionStatus.NEEDS_REAUTH)
        and f.last_refresh_error_kind == RefreshErrorKind.APP_CREDENTIALS_REJECTED
        and refresh_error_is_current(f)
    ):
        return {
            "app_error_source": "a token refresh",
            "app_error_at": human(f.last_refresh_error_at),
            "app_error": _reason(f.last_refresh_error, "no error text recorded"),
        }
    attempt = f.last_attempt
    if (
        attempt is not None
        and attempt.outcome == AttemptOutcome.APP_REJECTED
        and f.status != ConnectionStatus.UNKNOWN_USER
        and not attempt_superseded(f, attempt)
        and not _after(f.last_refresh_at, attempt.finished_at or attempt.started_at)
    ):
        return {
            "app_error_source": "a connection attempt",
            "app_error_at": human(attempt.finished_at or attempt.started_at),
            "app_error": _reason(attempt.reason, "no error text recorded"),
        }
    return None


# --- a live connection ---------------------------------------------------------------------------

def rule_missing_permissions(f: ConnectionFacts, t: Thresholds) -> Values | None:
    if f.status != ConnectionStatus.CONNECTED or f.granted_scopes is None:
        return None
    verdict = grant_verdict(f.granted_scopes)
    if verdict.complete:
        return None
    values = {
        # The engine words each shortfall from the knowledge file (missing_scopes, missing_effects).
        NEEDS: " ".join(s.need for s in verdict.shortfalls),
        "granted_scopes": _scopes_text(f.granted_scopes),
        # Whether syncing still works is the verdict's one sentence, not any shortfall's.
        "sync_sentence": verdict.sync_sentence or "",
    }
    if verdict.severity == Severity.WARNING:
        values[VARIANT] = "minor"
    return values


def rule_token_refresh_failing(f: ConnectionFacts, t: Thresholds) -> Values | None:
    if (
        f.status != ConnectionStatus.CONNECTED
        or f.last_refresh_error_kind not in (RefreshErrorKind.TRANSIENT, RefreshErrorKind.RATE_LIMITED)
        or not refresh_error_is_current(f)
        or f.consecutive_refresh_failures < t.refresh_failures_before_warning
    ):
        return None
    kind = "Strava rate limit" if f.last_refresh_error_kind == RefreshErrorKind.RATE_LIMITED else "timeout or server error"
    values = {
        "consecutive_refresh_failures": str(f.consecutive_refresh_failures),
        "refresh_error_kind": kind,
        "last_refresh_error_at": human(f.last_refresh_error_at),
        "last_refresh_error": _reason(f.last_refresh_error, "no error text recorded"),
        "token_expires_at": human(f.token_expires_at),
        "last_refresh_at": human(f.last_refresh_at, "never"),
    }
    if f.token_expires_at is not None and utc(f.token_expires_at) <= utc(f.now):
        values[VARIANT] = "expired"
    return values


# --- webhooks ------------------------------------------------------------------------------------


def rule_webhook_missing(f: ConnectionFacts, t: Thresholds) -> Values | None:
    sub = f.subscription
    if not f.strava_configured or sub is None or not sub.checked:
        return None  # nothing reliable to say; the facts record why
    if sub.exists and sub.callback_url == sub.expected_callback_url:
        return None
    note = ""
    if sub.last_registration_outcome == "failed":
        note = (
            f" The last attempt to register it ({human(sub.last_registration_at)}) failed: "
            f"{_reason(sub.last_registration_error, 'no error text recorded')}."
        )
    values = {
        "expected_callback_url": sub.expected_callback_url,
        "callback_url": sub.callback_url or "an unknown address",
        "registration_note": note,
    }
    if sub.exists:
        values[VARIANT] = "wrong_callback"
    elif (f.connected_athletes == 0 and sub.last_registration_outcome is None
          and f.status in (ConnectionStatus.NOT_CONNECTED, ConnectionStatus.UNKNOWN_USER)):
        # A new installation: nobody connected yet and no registration ever tried (the newest
        # registration record is kept for good). The subscription is made after the first Connect.
        values[VARIANT] = "not_yet"
    return values


def rule_webhook_silent(f: ConnectionFacts, t: Thresholds) -> Values | None:
    sub = f.subscription
    if (
        f.status != ConnectionStatus.CONNECTED
        or not f.strava_configured
        or sub is None
        or not sub.healthy
        or f.app_last_event_at is None
    ):
        return None
    if f.granted_scopes is not None and not grant_verdict(f.granted_scopes).can_read_activities:
        return None  # missing_permissions explains the silence
    silent = timedelta(days=t.webhook_silent_days)
    reference = f.last_event_at or f.connected_at
    if reference is None or since(reference, f.now) < silent:
        return None
    if not _after(f.app_last_event_at, reference):
        return None  # nobody else is heard either: not this athlete's problem
    last = human(f.last_event_at) if f.last_event_at else f"none since connecting on {human(f.connected_at)}"
    return {
        "silent_for": duration(since(reference, f.now)),
        "last_event_at": last,
        "app_last_event_at": human(f.app_last_event_at),
        "silent_days": str(t.webhook_silent_days),
    }


# --- the hand-off to FitGlue's other services ----------------------------------------------------


def rule_events_undelivered(f: ConnectionFacts, t: Thresholds) -> Values | None:
    if f.events_undelivered <= 0:
        return None
    return {
        "undelivered_count": str(f.events_undelivered),
        "undelivered_since": human(f.events_undelivered_since),
        "undelivered_error": _reason(f.events_last_error),
    }


# --- rate limits ---------------------------------------------------------------------------------


def _pct(w: BudgetWindow) -> int:
    return (w.usage or 0) * 100 // w.limit


def _budget_line(w: BudgetWindow, now: datetime) -> str:
    return (
        f"{_BUDGET_NAMES[w.budget]}, {_WINDOW_NAMES[w.window]}: {w.usage} of {w.limit} requests used "
        f"({_pct(w)}%), resets at {clock_time(w.resets_at, now)}"
    )


def rule_rate_limited(f: ConnectionFacts, t: Thresholds) -> Values | None:
    """Severity: warning at or above the warn share; error once a window is used up (Strava refuses
    calls until it resets); info when only this user's jobs wait for the next window."""
    near = [
        w
        for w in f.budgets
        if w.usage is not None and w.limit > 0 and w.usage * 100 >= t.rate_limit_warn_pct * w.limit
    ]
    exhausted = [w for w in near if (w.usage or 0) >= w.limit]
    waiting = f.user_jobs_waiting_for_window
    if not near and waiting <= 0:
        return None
    if waiting > 0 and f.next_window_at is not None:
        resume = f.next_window_at
    elif exhausted:
        resume = max((w.resets_at for w in exhausted), key=utc)
    elif near:
        resume = min((w.resets_at for w in near), key=utc)
    else:
        resume = None
    resume_at = clock_time(resume, f.now) if resume is not None else "the start of the next window"
    budget_summary = ""
    if near:
        budget_summary = (
            f"Strava API usage is at or above {t.rate_limit_warn_pct}% of its limit — "
            + "; ".join(_budget_line(w, f.now) for w in near)
            + "."
        )
    queue_summary = ""
    if waiting > 0:
        one = waiting == 1
        queue_summary = (
            f" {waiting} {'job' if one else 'jobs'} of this user ({max(f.user_jobs_queued, waiting)} queued "
            f"in all) {'waits' if one else 'wait'} for the next rate-limit window and "
            f"{'resumes by itself' if one else 'resume by themselves'} at {resume_at}."
        )
    values = {
        "budget_summary": budget_summary,
        "queue_summary": queue_summary,
        "resume_at": resume_at,
        "user_jobs_waiting": str(waiting),
    }
    if exhausted:
        values[VARIANT] = "exhausted"
    elif not near:
        values[VARIANT] = "queued"
    return values


# --- all clear -----------------------------------------------------------------------------------


def rule_healthy(f: ConnectionFacts, t: Thresholds) -> Values | None:
    """Only consulted by the engine when no other finding fired."""
    if f.status != ConnectionStatus.CONNECTED:
        return None
    if f.last_event_at is not None:
        note = (
            f"The last event from this athlete arrived {duration(since(f.last_event_at, f.now))} ago "
            f"({human(f.last_event_at)})."
        )
    else:
        note = "No event from this athlete yet, which is normal until they record or edit an activity."
    return {
        "granted_scopes": _scopes_text(f.granted_scopes)
        if f.granted_scopes is not None
        else "unrecorded scopes",
        "token_expires_at": human(f.token_expires_at, "an unrecorded time"),
        "last_event_note": note,
    }


# Every finding but ``healthy``, keyed by finding id.
RULES: dict[FindingId, Rule] = {
    FindingId.UNKNOWN_USER: rule_unknown_user,
    FindingId.NOT_CONNECTED: rule_not_connected,
    FindingId.REVOKED: rule_revoked,
    FindingId.NEEDS_REAUTH: rule_needs_reauth,
    FindingId.AUTHORIZATION_FAILED: rule_authorization_failed,
    FindingId.APP_CAPACITY_REACHED: rule_app_capacity_reached,
    FindingId.STRAVA_APP_MISCONFIGURED: rule_strava_app_misconfigured,
    FindingId.MISSING_PERMISSIONS: rule_missing_permissions,
    FindingId.TOKEN_REFRESH_FAILING: rule_token_refresh_failing,
    FindingId.WEBHOOK_MISSING: rule_webhook_missing,
    FindingId.WEBHOOK_SILENT: rule_webhook_silent,
    FindingId.EVENTS_UNDELIVERED: rule_events_undelivered,
    FindingId.RATE_LIMITED: rule_rate_limited,
}
HEALTHY_RULE: Rule = rule_healthy
