"""What we know about one user's Strava connection at one moment: the diagnosis input.

All types are frozen dataclasses with plain values; the service gathers them, the engine only reads
them. Times must be timezone-aware (naive times are taken as UTC). Nothing here may hold a secret.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from troubleshooting.vocabulary import AttemptOutcome, Budget, ConnectionStatus, RefreshErrorKind, Window


def _check(facts: Any, name: str, allowed: type[StrEnum]) -> None:
    """Holds the field as a word of the vocabulary (given as its plain string or as the word)."""
    value = getattr(facts, name)
    if value not in allowed.__members__.values():
        raise ValueError(f"{type(facts).__name__}.{name} must be one of {', '.join(allowed)}; got {value!r}")
    object.__setattr__(facts, name, allowed(value))


@dataclass(frozen=True)
class AttemptFacts:
    """The user's most recent OAuth attempt."""

    started_at: datetime
    finished_at: datetime | None
    outcome: AttemptOutcome
    reason: str | None  # human-readable reason we recorded (no secrets)

    def __post_init__(self) -> None:
        _check(self, "outcome", AttemptOutcome)


@dataclass(frozen=True)
class SubscriptionFacts:
    """The app-wide Strava push subscription, as the live check saw it."""

    checked: bool  # False when Strava isn't configured or the live check failed
    exists: bool | None
    callback_url: str | None
    expected_callback_url: str
    check_error: str | None = None
    last_registration_outcome: str | None = None  # ok | failed
    last_registration_error: str | None = None
    last_registration_at: datetime | None = None

    def __post_init__(self) -> None:
        if self.last_registration_outcome not in (None, "ok", "failed"):
            raise ValueError("SubscriptionFacts.last_registration_outcome must be one of ok, failed; "
                             f"got {self.last_registration_outcome!r}")

    @property
    def healthy(self) -> bool:
        """Checked, present, and pointing at our callback."""
        return bool(self.checked and self.exists and self.callback_url == self.expected_callback_url)


@dataclass(frozen=True)
class BudgetWindow:
    """One Strava rate-limit window of one budget."""

    budget: Budget
    window: Window
    limit: int
    usage: int | None  # None before any header seen in the current window
    resets_at: datetime

    def __post_init__(self) -> None:
        _check(self, "budget", Budget)
        _check(self, "window", Window)
        if self.limit < 0:
            raise ValueError("BudgetWindow.limit must not be negative")


@dataclass(frozen=True)
class Thresholds:
    """Where "near a limit" and "silent" begin. The service fills these from its settings."""

    rate_limit_warn_pct: int = 80  # FITGLUE_RATE_LIMIT_WARN_PCT
    webhook_silent_days: int = 14  # FITGLUE_WEBHOOK_SILENT_DAYS
    attempt_abandoned_after_s: int = 900  # a pending attempt older than this never came back
    refresh_failures_before_warning: int = 1

    def __post_init__(self) -> None:
        if not 1 <= self.rate_limit_warn_pct <= 100:
            raise ValueError("Thresholds.rate_limit_warn_pct must be between 1 and 100")
        if self.webhook_silent_days < 1:
            raise ValueError("Thresholds.webhook_silent_days must be at least 1")
        if self.attempt_abandoned_after_s < 1:
            raise ValueError("Thresholds.attempt_abandoned_after_s must be at least 1")
        if self.refresh_failures_before_warning < 1:
            raise ValueError("Thresholds.refresh_failures_before_warning must be at least 1")


@dataclass(frozen=True)
class ConnectionFacts:
    """One FitGlue user's Strava connection, plus the app-wide state that affects it."""

    now: datetime
    who: str  # what the agent asked about (e-mail or athlete id)
    email: str | None  # None when no such user
    status: ConnectionStatus
    athlete_id: int | None = None
    granted_scopes: frozenset[str] | None = None
    token_expires_at: datetime | None = None
    connected_at: datetime | None = None
    last_refresh_at: datetime | None = None
    last_refresh_error_kind: RefreshErrorKind | None = None
    last_refresh_error: str | None = None
    last_refresh_error_at: datetime | None = None
    consecutive_refresh_failures: int = 0
    status_reason: str | None = None
    status_changed_at: datetime | None = None
    last_attempt: AttemptFacts | None = None
    app_athlete_capacity: int | None = None  # FITGLUE_STRAVA_ATHLETE_CAPACITY
    connected_athletes: int = 0  # athletes currently connected app-wide
    subscription: SubscriptionFacts | None = None
    last_event_at: datetime | None = None  # last webhook event from THIS athlete
    app_last_event_at: datetime | None = None  # last webhook event from anyone
    budgets: tuple[BudgetWindow, ...] = ()
    user_jobs_queued: int = 0  # this user's jobs waiting
    user_jobs_waiting_for_window: int = 0  # of which deferred to the next rate-limit window
    next_window_at: datetime | None = None
    strava_configured: bool = True
    user_jobs_failed: int = 0  # this user's jobs settled as failed (permanently, or out of retries)
    last_job_failure: str | None = None  # the newest failed job's reason ("permanent: …", "gave up after …")
    # This user's outbound events FitGlue's other services have not taken: parked, or waiting after a
    # failed attempt; the oldest one's time, and the newest delivery error (no secrets).
    events_undelivered: int = 0
    events_undelivered_since: datetime | None = None
    events_last_error: str | None = None

    def __post_init__(self) -> None:
        _check(self, "status", ConnectionStatus)
        if self.last_refresh_error_kind is not None:
            _check(self, "last_refresh_error_kind", RefreshErrorKind)
        if self.status == ConnectionStatus.UNKNOWN_USER and self.email is not None:
            raise ValueError("ConnectionFacts: status unknown_user means there is no e-mail to report")
        if self.status != ConnectionStatus.UNKNOWN_USER and self.email is None:
            raise ValueError(f"ConnectionFacts: status {self.status} needs the user's e-mail")
        if self.granted_scopes is not None and not isinstance(self.granted_scopes, frozenset):
            object.__setattr__(self, "granted_scopes", frozenset(self.granted_scopes))
        if not isinstance(self.budgets, tuple):
            object.__setattr__(self, "budgets", tuple(self.budgets))
