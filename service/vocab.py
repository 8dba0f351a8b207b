"""One place for the words stored in the database and shown in JSON."""

from __future__ import annotations

# Connection status (DESIGN.md diagnosis vocabulary; unknown_user is never stored).
NOT_CONNECTED = "not_connected"
CONNECTED = "connected"
NEEDS_REAUTH = "needs_reauth"
REVOKED = "revoked"

# OAuth attempt outcomes.
PENDING = "pending"
ATTEMPT_CONNECTED = "connected"
ATTEMPT_PARTIAL = "partial"
ATTEMPT_DENIED = "denied"
ATTEMPT_EXCHANGE_FAILED = "exchange_failed"
ATTEMPT_ATHLETE_CONFLICT = "athlete_conflict"
ATTEMPT_STATE_INVALID = "state_invalid"
ATTEMPT_APP_REJECTED = "app_rejected"

# Refresh error kinds kept on the connection.
ERR_TRANSIENT = "transient"
ERR_RATE_LIMITED = "rate_limited"
ERR_APP_REJECTED = "app_credentials_rejected"
ERR_GRANT_DEAD = "grant_dead"

# What FitGlue asks Strava for, and what each side needs (the article's "Permissions Requested").
REQUESTED_SCOPES = ("read", "activity:read_all", "activity:write", "profile:read_all")
SOURCE_SCOPES = frozenset({"activity:read", "activity:read_all"})  # any one suffices
DESTINATION_SCOPE = "activity:write"
PROFILE_SCOPE = "profile:read_all"


def parse_scopes(raw: str | None) -> frozenset[str]:
    if not raw:
        return frozenset()
    return frozenset(part.strip() for part in raw.replace(" ", ",").split(",") if part.strip())


def missing_needed_scopes(granted: frozenset[str]) -> list[str]:
    """Scopes whose absence stops source or destination from working (profile is optional)."""
    missing = []
    if not granted & SOURCE_SCOPES:
        missing.append("activity:read_all")
    if DESTINATION_SCOPE not in granted:
        missing.append(DESTINATION_SCOPE)
    return missing


def reads_activities(granted: frozenset[str]) -> bool:
    """Whether a grant lets FitGlue read activities at all (Strava answers 401
    `activity:read_permission missing` otherwise, however often it is asked)."""
    return bool(granted & SOURCE_SCOPES)
