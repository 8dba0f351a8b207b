"""The fixed words of the diagnosis vocabulary (DESIGN.md, "Diagnosis vocabulary").

Automation and the Slack buttons rely on these names; change them only together with DESIGN.md.
"""

from __future__ import annotations

# Most severe first. ``ok`` is only ever used by ``healthy``.
SEVERITY_ORDER: tuple[str, ...] = ("error", "warning", "info", "ok")
SEVERITIES: frozenset[str] = frozenset(SEVERITY_ORDER)

# The actions a finding can offer; they are also the Slack buttons' ``action_id``s.
ACTIONS: tuple[str, ...] = ("send_connect_link", "reregister_webhook", "refresh_token", "retry_events")

# Who has to do something about a finding.
#   user      the FitGlue user must act (usually: open a new Connect link)
#   support   a support agent can fix it with one of our actions
#   operator  our Strava application itself (credentials, capacity, limits) is the problem
#   none      nobody needs to act (``healthy``)
AUDIENCES: tuple[str, ...] = ("user", "support", "operator", "none")

# Connection statuses.
STATUSES: tuple[str, ...] = ("unknown_user", "not_connected", "connected", "needs_reauth", "revoked")

# Every finding id, in the stable order used to break ties between findings of equal severity.
FINDING_IDS: tuple[str, ...] = (
    "unknown_user",
    "not_connected",
    "revoked",
    "needs_reauth",
    # root causes about our app come before the failed attempt they explain
    "strava_app_misconfigured",
    "app_capacity_reached",
    "authorization_failed",
    "missing_permissions",
    "token_refresh_failing",
    "webhook_missing",
    "webhook_silent",
    "events_undelivered",
    "rate_limited",
    "healthy",
)

# Section anchors of the help article "Connecting Strava — setup and troubleshooting".
ARTICLE_ANCHORS: tuple[str, ...] = (
    "#overview",
    "#setup",
    "#permissions-requested",
    "#authorization-failed",
    "#strava-webhook-not-receiving",
    "#rate-limiting",
    "#connected-but-needs-re-authorization",
    "#revoking-access",
)

ATTEMPT_OUTCOMES: tuple[str, ...] = (
    "pending",
    "connected",
    "partial",
    "denied",
    "exchange_failed",
    "athlete_conflict",
    "state_invalid",
    "app_rejected",
)
FAILED_ATTEMPT_OUTCOMES: frozenset[str] = frozenset(
    {"denied", "exchange_failed", "athlete_conflict", "state_invalid", "app_rejected"}
)

REFRESH_ERROR_KINDS: tuple[str, ...] = ("transient", "rate_limited", "app_credentials_rejected", "grant_dead")

BUDGETS: tuple[str, ...] = ("overall", "read")
WINDOWS: tuple[str, ...] = ("15min", "daily")

# Placeholder names a knowledge template may use. The engine always provides the first four;
# the rules provide the rest (each rule only the ones its own entry uses).
COMMON_PLACEHOLDERS: tuple[str, ...] = ("who", "email", "athlete_id", "status")
PLACEHOLDERS: frozenset[str] = frozenset(
    {
        *COMMON_PLACEHOLDERS,
        # not_connected
        "connection_history",
        # authorization_failed
        "attempt_started_at",
        "attempt_age",
        "attempt_reason",
        # app_capacity_reached
        "athlete_capacity",
        "connected_athletes",
        # missing_permissions / healthy
        "granted_scopes",
        "missing_scopes",
        "missing_effects",
        # needs_reauth / revoked
        "status_changed_at",
        "status_reason",
        # token refresh
        "last_refresh_error",
        "last_refresh_error_at",
        "last_refresh_at",
        "consecutive_refresh_failures",
        "refresh_error_kind",
        "token_expires_at",
        # strava_app_misconfigured
        "app_error",
        "app_error_at",
        "app_error_source",
        # webhooks
        "expected_callback_url",
        "callback_url",
        "registration_note",
        "last_event_at",
        "app_last_event_at",
        "silent_for",
        "silent_days",
        # rate limiting
        "budget_summary",
        "queue_summary",
        "resume_at",
        "user_jobs_waiting",
        # healthy
        "last_event_note",
        # events_undelivered (the outbound events to FitGlue's other services)
        "undelivered_count",
        "undelivered_since",
        "undelivered_error",
    }
)
