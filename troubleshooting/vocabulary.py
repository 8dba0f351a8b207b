"""The one vocabulary: every fixed word FitGlue stores, judges, shows in JSON or offers as a button.

Each word is defined here once, as a ``StrEnum`` member (a ``str``, so it compares, hashes, prints
and serialises as its value) or a constant. The database, the diagnosis rules, the knowledge file's
validation, the Slack and CLI renderers and the admin API's OpenAPI document all import it from here.
It lives in ``troubleshooting`` because that package may import nothing of ours, and everything else
may import it. The values are contract (DESIGN.md part 2, "Diagnosis vocabulary"): automation and
the Slack buttons rely on them; change them only together with DESIGN.md.
"""

from __future__ import annotations

from enum import StrEnum


class ConnectionStatus(StrEnum):
    """A user's Strava connection, as stored on it (``unknown_user`` is only ever reported)."""

    UNKNOWN_USER = "unknown_user"  # an e-mail or athlete id that matches nobody
    NOT_CONNECTED = "not_connected"  # never connected, or disconnected by an operator
    CONNECTED = "connected"
    NEEDS_REAUTH = "needs_reauth"  # our refresh found the grant dead
    REVOKED = "revoked"  # Strava's deauthorization event, confirmed


class AttemptOutcome(StrEnum):
    """How one OAuth attempt (a press of "Connect with Strava") ended."""

    PENDING = "pending"  # sent to Strava, not back yet
    CONNECTED = "connected"  # every permission FitGlue needs was granted
    PARTIAL = "partial"  # connected, but without some permission
    DENIED = "denied"
    EXCHANGE_FAILED = "exchange_failed"
    ATHLETE_CONFLICT = "athlete_conflict"  # the Strava account is linked to another FitGlue user
    STATE_INVALID = "state_invalid"
    APP_REJECTED = "app_rejected"  # Strava refused our app's own credentials


FAILED_ATTEMPT_OUTCOMES: frozenset[AttemptOutcome] = frozenset(
    {
        AttemptOutcome.DENIED,
        AttemptOutcome.EXCHANGE_FAILED,
        AttemptOutcome.ATHLETE_CONFLICT,
        AttemptOutcome.STATE_INVALID,
        AttemptOutcome.APP_REJECTED,
    }
)


class RefreshErrorKind(StrEnum):
    """Why the last token refresh failed, as kept on the connection."""

    TRANSIENT = "transient"
    RATE_LIMITED = "rate_limited"
    APP_CREDENTIALS_REJECTED = "app_credentials_rejected"
    GRANT_DEAD = "grant_dead"


class Scope(StrEnum):
    """Strava OAuth scopes FitGlue knows (reference: Strava's "Authentication" documentation)."""

    READ = "read"
    ACTIVITY_READ = "activity:read"
    ACTIVITY_READ_ALL = "activity:read_all"
    ACTIVITY_WRITE = "activity:write"
    PROFILE_READ_ALL = "profile:read_all"


# What FitGlue asks Strava for (the authorize request's ``scope``), in that order.
REQUESTED_SCOPES: tuple[Scope, ...] = (
    Scope.READ,
    Scope.ACTIVITY_READ_ALL,
    Scope.ACTIVITY_WRITE,
    Scope.PROFILE_READ_ALL,
)
# Any one of these makes Strava a source (FitGlue can read activities).
ACTIVITY_READ_SCOPES: frozenset[Scope] = frozenset({Scope.ACTIVITY_READ, Scope.ACTIVITY_READ_ALL})


class Need(StrEnum):
    """What a grant's shortfall costs FitGlue. Explained in words by the knowledge file's
    ``permissions`` section (for the agent and for the user)."""

    SOURCE = "source"  # no activity read at all: FitGlue cannot read activities, Strava sends no events
    PRIVATE_ACTIVITIES = "private_activities"  # activity:read without read_all: private ones stay hidden
    DESTINATION = "destination"  # no activity:write: FitGlue cannot upload activities
    PROFILE = "profile"  # no profile:read_all: less profile to identify the athlete by


class Severity(StrEnum):
    """How bad a finding is; declared most severe first. ``ok`` belongs to ``healthy`` alone."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"
    OK = "ok"


class Action(StrEnum):
    """What a finding can offer; also the Slack buttons' ``action_id``s."""

    SEND_CONNECT_LINK = "send_connect_link"
    REREGISTER_WEBHOOK = "reregister_webhook"
    REFRESH_TOKEN = "refresh_token"
    RETRY_EVENTS = "retry_events"  # send the user's undelivered outbound events again


class Audience(StrEnum):
    """Who has to do something about a finding."""

    USER = "user"  # the FitGlue user must act (usually: open a new Connect link)
    SUPPORT = "support"  # a support agent can fix it with one of our actions
    OPERATOR = "operator"  # our Strava application itself (credentials, capacity, limits) is the problem
    NONE = "none"  # nobody needs to act (``healthy``)


class FindingId(StrEnum):
    """Every finding; declaration order breaks ties between findings of equal severity."""

    UNKNOWN_USER = "unknown_user"
    NOT_CONNECTED = "not_connected"
    REVOKED = "revoked"
    NEEDS_REAUTH = "needs_reauth"
    # root causes about our app come before the failed attempt they explain
    STRAVA_APP_MISCONFIGURED = "strava_app_misconfigured"
    APP_CAPACITY_REACHED = "app_capacity_reached"
    AUTHORIZATION_FAILED = "authorization_failed"
    MISSING_PERMISSIONS = "missing_permissions"
    TOKEN_REFRESH_FAILING = "token_refresh_failing"
    WEBHOOK_MISSING = "webhook_missing"
    WEBHOOK_SILENT = "webhook_silent"
    EVENTS_UNDELIVERED = "events_undelivered"  # FitGlue's other services miss this user's events
    RATE_LIMITED = "rate_limited"
    HEALTHY = "healthy"


class Article(StrEnum):
    """Section anchors of the help article "Connecting Strava — setup and troubleshooting"."""

    OVERVIEW = "#overview"
    SETUP = "#setup"
    PERMISSIONS_REQUESTED = "#permissions-requested"
    AUTHORIZATION_FAILED = "#authorization-failed"
    WEBHOOK_NOT_RECEIVING = "#strava-webhook-not-receiving"
    RATE_LIMITING = "#rate-limiting"
    NEEDS_REAUTHORIZATION = "#connected-but-needs-re-authorization"
    REVOKING_ACCESS = "#revoking-access"


class Budget(StrEnum):
    """Strava's two rate-limit budgets: all requests, and reads (every endpoint but uploads)."""

    OVERALL = "overall"
    READ = "read"


class Window(StrEnum):
    """The windows of each budget: 15 minutes (from :00/:15/:30/:45 UTC) and the UTC day."""

    FIFTEEN_MIN = "15min"
    DAILY = "daily"


class JobState(StrEnum):
    """A queued job's state (``jobs.state``), as ``fitglue jobs --state`` and the admin API name it."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class JobKind(StrEnum):
    """What a queued job does; each kind has one handler (service/background/job_handlers.py)."""

    WEBHOOK_EVENT = "webhook_event"  # check one Strava push event with Strava and apply it
    CATCH_UP = "catch_up"  # list an athlete's recent activities (after a Connect, or a lost event)
    BULK_LINKS = "bulk_links"  # send Connect links to everyone with a finding, from Slack (issue 13)


# The words in order, for messages, choices and tie-breaking.
STATUSES: tuple[ConnectionStatus, ...] = tuple(ConnectionStatus)
ATTEMPT_OUTCOMES: tuple[AttemptOutcome, ...] = tuple(AttemptOutcome)
REFRESH_ERROR_KINDS: tuple[RefreshErrorKind, ...] = tuple(RefreshErrorKind)
SEVERITY_ORDER: tuple[Severity, ...] = tuple(Severity)
SEVERITIES: frozenset[Severity] = frozenset(Severity)
ACTIONS: tuple[Action, ...] = tuple(Action)
AUDIENCES: tuple[Audience, ...] = tuple(Audience)
FINDING_IDS: tuple[FindingId, ...] = tuple(FindingId)
ARTICLE_ANCHORS: tuple[Article, ...] = tuple(Article)
BUDGETS: tuple[Budget, ...] = tuple(Budget)
WINDOWS: tuple[Window, ...] = tuple(Window)
JOB_STATES: tuple[JobState, ...] = tuple(JobState)

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
        "sync_sentence",
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
