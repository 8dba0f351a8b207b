"""The tables. Status and outcome values are plain strings: the words of `troubleshooting.vocabulary`."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from service.db.types import UTCDateTime
from troubleshooting.vocabulary import AttemptOutcome, ConnectionStatus, JobState


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Lower-cased copy carries the uniqueness, so Alice@X and alice@x are one user.
    email_normalized: Mapped[str] = mapped_column(String(320), unique=True)
    email: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    connection: Mapped[StravaConnection | None] = relationship(
        back_populates="user", uselist=False, cascade="all, delete-orphan", passive_deletes=True
    )


class StravaConnection(Base):
    __tablename__ = "strava_connections"
    __table_args__ = (
        Index("ix_connections_due", "status", "expires_at"),
        # The App Home: connections per status and grant, newest with a grant first (migration 0005).
        Index("ix_connections_grant", "status", "granted_scopes", "connected_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), unique=True)
    athlete_id: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    status: Mapped[str] = mapped_column(String(20), default=ConnectionStatus.NOT_CONNECTED.value)
    status_reason: Mapped[str | None] = mapped_column(Text)
    status_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    granted_scopes: Mapped[str | None] = mapped_column(String(200))
    access_token_enc: Mapped[str | None] = mapped_column(Text)
    refresh_token_enc: Mapped[str | None] = mapped_column(Text)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    connected_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_refresh_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_refresh_error_kind: Mapped[str | None] = mapped_column(String(40))
    last_refresh_error: Mapped[str | None] = mapped_column(Text)
    last_refresh_error_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    refresh_failures: Mapped[int] = mapped_column(Integer, default=0)
    # When the current run of failed refreshes began (None while refreshes succeed): `affected`'s "since".
    refresh_failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Backoff after a transient failure: the sweep leaves the row alone until then.
    next_refresh_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # A short lease taken with a conditional UPDATE, so two sweeps (or replicas) never refresh one
    # token twice; it expires by itself if its holder dies.
    refresh_lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_event_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    user: Mapped[User] = relationship(back_populates="connection")


class ConnectLink(Base):
    __tablename__ = "connect_links"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    issued_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class OAuthAttempt(Base):
    __tablename__ = "oauth_attempts"
    __table_args__ = (Index("ix_attempts_user_started", "user_id", "started_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    link_id: Mapped[str | None] = mapped_column(ForeignKey("connect_links.id", ondelete="SET NULL"))
    # Only digests of the state and of the browser-binding cookie are kept.
    state_hash: Mapped[str] = mapped_column(String(64), unique=True)
    browser_hash: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    outcome: Mapped[str] = mapped_column(String(30), default=AttemptOutcome.PENDING.value)
    reason: Mapped[str | None] = mapped_column(Text)
    athlete_id: Mapped[int | None] = mapped_column(BigInteger)
    granted_scopes: Mapped[str | None] = mapped_column(String(200))


class AuditEntry(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(60))
    target: Mapped[str | None] = mapped_column(String(320))
    result: Mapped[str] = mapped_column(String(40))
    detail: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int | None] = mapped_column(Integer)


# Audit filtered by target (any case), and relabelling on erasure (migration 0003).
Index("ix_audit_target_lower", func.lower(AuditEntry.target))


class WebhookEvent(Base):
    __tablename__ = "webhook_events"
    __table_args__ = (
        Index("ix_events_state", "state", "id"),
        # Diagnosis: one athlete's newest event, and the newest app-wide (migration 0003).
        Index("ix_events_owner_received", "owner_id", "received_at"),
        Index("ix_events_received", "received_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # subscription_id:object_type:object_id:aspect_type:event_time:updates — a redelivery is a duplicate.
    dedupe_key: Mapped[str] = mapped_column(String(300), unique=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    subscription_id: Mapped[int] = mapped_column(BigInteger)
    object_type: Mapped[str] = mapped_column(String(20))
    object_id: Mapped[int] = mapped_column(BigInteger)
    aspect_type: Mapped[str] = mapped_column(String(20))
    owner_id: Mapped[int] = mapped_column(BigInteger)  # indexed by ix_events_owner_received
    event_time: Mapped[int] = mapped_column(BigInteger)
    updates: Mapped[str] = mapped_column(Text, default="{}")
    state: Mapped[str] = mapped_column(String(20), default="new")
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    error: Mapped[str | None] = mapped_column(Text)


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_claim", "state", "priority", "run_after"),
        Index("ix_jobs_user", "user_id", "state"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    payload: Mapped[str] = mapped_column(Text, default="{}")
    # Lower runs first: interactive work 0, webhook events 10, catch-up 50.
    priority: Mapped[int] = mapped_column(Integer, default=10)
    run_after: Mapped[datetime] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    # queued | running | done | failed
    state: Mapped[str] = mapped_column(String(20), default=JobState.QUEUED.value)
    # Why a queued job waits: "rate_limit" when deferred to the next window.
    waiting_for: Mapped[str | None] = mapped_column(String(30))
    claimed_by: Mapped[str | None] = mapped_column(String(80))
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    dedupe_key: Mapped[str | None] = mapped_column(String(300), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class RateLimitState(Base):
    """Last usage Strava reported per budget ("overall", "read"); shared by every replica."""

    __tablename__ = "rate_limit_state"

    budget: Mapped[str] = mapped_column(String(20), primary_key=True)
    limit_15min: Mapped[int] = mapped_column(Integer)
    limit_daily: Mapped[int] = mapped_column(Integer)
    usage_15min: Mapped[int | None] = mapped_column(Integer)
    usage_daily: Mapped[int | None] = mapped_column(Integer)
    observed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Our own count of calls in the current windows (never below the last observed usage), so a
    # burst of workers does not overshoot between two responses' headers. Migration 0002.
    counted_15min: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    counted_daily: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    counted_quarter: Mapped[datetime | None] = mapped_column(UTCDateTime())
    counted_day: Mapped[datetime | None] = mapped_column(UTCDateTime())


class WebhookRegistration(Base):
    __tablename__ = "webhook_registrations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    actor: Mapped[str] = mapped_column(String(200))
    outcome: Mapped[str] = mapped_column(String(20))
    error: Mapped[str | None] = mapped_column(Text)
    steps: Mapped[str] = mapped_column(Text, default="[]")
    subscription_id: Mapped[int | None] = mapped_column(BigInteger)


class ActivitySummary(Base):
    """What the source side learned of an activity: enough to show, no streams."""

    __tablename__ = "activity_summaries"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    athlete_id: Mapped[int] = mapped_column(BigInteger, index=True)
    name: Mapped[str | None] = mapped_column(String(300))
    sport_type: Mapped[str | None] = mapped_column(String(60))
    start_date: Mapped[datetime | None] = mapped_column(UTCDateTime())
    fetched_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class AppState(Base):
    """Small app-wide facts (alert incidents, cached subscription id), one row per key."""

    __tablename__ = "app_state"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ActivityNotFound(Base):
    """Strava answered 404 for this activity to this athlete's token (the memo that keeps forged or
    repeated ids from costing a call each time); kept for FITGLUE_NOT_FOUND_MEMO_S."""

    __tablename__ = "activity_not_found"

    activity_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    athlete_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    answered_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class UnconfirmedEventCalls(Base):
    """Strava calls made to check unsigned events, per claimed athlete and 15-minute window (the cap
    FITGLUE_UNCONFIRMED_CALLS_PER_ATHLETE); rows of past windows are pruned."""

    __tablename__ = "unconfirmed_event_calls"

    athlete_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    window_start: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    calls: Mapped[int] = mapped_column(Integer, default=0)


class OutboundEvent(Base):
    """The transactional outbox of events for FitGlue's other services (README "Outbound events").

    A row is written in the same transaction as the state change it describes, and sent by the
    worker (`service.background.outbound`). `body` is the JSON body exactly as it is sent and signed;
    `webhook_id` stays the same across retries. No foreign key to users: a pending
    `fitglue.user.erased` outlives the user it announces. Migration 0007.
    """

    __tablename__ = "outbound_events"
    __table_args__ = (
        # What is due: pending rows by next attempt; one athlete's rows in order.
        Index("ix_outbound_due", "state", "next_attempt_at"),
        Index("ix_outbound_athlete", "athlete_id", "state", "id"),
        Index("ix_outbound_user", "user_id"),
        Index("ix_outbound_created", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    webhook_id: Mapped[str] = mapped_column(String(64), unique=True)
    type: Mapped[str] = mapped_column(String(60))
    athlete_id: Mapped[int | None] = mapped_column(BigInteger)
    user_id: Mapped[int | None] = mapped_column(Integer)
    body: Mapped[str] = mapped_column(Text)
    # pending | delivered | failed (parked after the last attempt of FITGLUE_EVENTS_RETRY_SCHEDULE_S)
    state: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # A delivery's lease: another worker takes the row over only once it has run out.
    claimed_by: Mapped[str | None] = mapped_column(String(80))
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    replay_of: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


# Issue 13's tables (connection history, bulk link runs) and its indexes on the tables above live
# beside this module; importing it here registers them on Base.metadata, for Alembic and the tests.
from service.db.support_tables import BulkLinkRun, ConnectionHistory  # noqa: E402

__all__ = ["ActivityNotFound", "ActivitySummary", "AppState", "AuditEntry", "Base", "BulkLinkRun",
           "ConnectLink", "ConnectionHistory", "Job", "OAuthAttempt", "OutboundEvent", "RateLimitState",
           "StravaConnection", "UnconfirmedEventCalls", "User", "WebhookEvent", "WebhookRegistration"]
