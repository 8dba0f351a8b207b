"""One place for the words stored in the database and shown in JSON."""

from __future__ import annotations

# Re-exported (``X as X``) so service modules find the scope words beside the other words.
from troubleshooting.permissions import ACTIVITY_READ_SCOPES, ACTIVITY_WRITE_SCOPE
from troubleshooting.permissions import PROFILE_SCOPE as PROFILE_SCOPE
from troubleshooting.permissions import REQUESTED_SCOPES as REQUESTED_SCOPES
from troubleshooting.permissions import GrantVerdict as GrantVerdict
from troubleshooting.permissions import grant_verdict as grant_verdict
from troubleshooting.permissions import parse_scopes as parse_scopes

# Connection status (DESIGN.md diagnosis vocabulary; unknown_user is never stored).
NOT_CONNECTED = "not_connected"
CONNECTED = "connected"
NEEDS_REAUTH = "needs_reauth"
REVOKED = "revoked"
UNKNOWN_USER = "unknown_user"  # a status only reported, for an e-mail that matches nobody

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

# What FitGlue asks Strava for and what each side needs (the article's "Permissions Requested")
# are defined once, in troubleshooting.permissions, whose grant_verdict judges every grant.
SOURCE_SCOPES = ACTIVITY_READ_SCOPES  # any one suffices
DESTINATION_SCOPE = ACTIVITY_WRITE_SCOPE


def reads_activities(granted: frozenset[str]) -> bool:
    """Whether a grant lets FitGlue read activities at all: the verdict's ``can_read_activities``."""
    return grant_verdict(granted).can_read_activities


# The states of a queued job (jobs.state), as `fitglue jobs --state` and the admin API name them.
JOB_QUEUED, JOB_RUNNING, JOB_DONE, JOB_FAILED = "queued", "running", "done", "failed"
JOB_STATES = (JOB_QUEUED, JOB_RUNNING, JOB_DONE, JOB_FAILED)
