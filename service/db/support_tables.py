"""What issue 13 adds to the schema (migration 0008): the indexes `fitglue history` and `fitglue
affected` read through, on tables of models.py; what happened to a connection that no other table
keeps (`fitglue history`); and bulk Connect-link runs (`fitglue affected --send-links`, the Slack
button)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, func, literal_column
from sqlalchemy.orm import Mapped, mapped_column

from service.db.models import (
    AuditEntry,
    Base,
    ConnectLink,
    Job,
    OAuthAttempt,
    OutboundEvent,
    StravaConnection,
)
from service.db.types import UTCDateTime

# `fitglue affected`: who entered a status when, whose refreshes keep failing, who went quiet.
Index("ix_connections_status_changed", StravaConnection.status, StravaConnection.status_changed_at)
Index("ix_connections_refresh_failing", StravaConnection.status, StravaConnection.refresh_failing_since)
Index("ix_connections_last_event", StravaConnection.status, StravaConnection.last_event_at)
# `affected authorization_failed`: each user's newest attempt and its outcome, from the index alone.
Index("ix_attempts_user_latest", OAuthAttempt.user_id, OAuthAttempt.started_at, OAuthAttempt.id,
      OAuthAttempt.outcome)
# One user's history newest first: links (also `--send-links` skipping live links), agent actions,
# and jobs without the one job per webhook event (the event's own entry says what became of it;
# partial, so 10,000 events cost nothing here).
Index("ix_links_user_created", ConnectLink.user_id, ConnectLink.created_at)
Index("ix_outbound_user_created", OutboundEvent.user_id, OutboundEvent.created_at)
Index("ix_audit_target_lower_at", func.lower(AuditEntry.target), AuditEntry.at)
_NOT_EVENT_JOB = literal_column("kind") != literal_column("'webhook_event'")
Index("ix_jobs_user_history", Job.user_id, Job.created_at, sqlite_where=_NOT_EVENT_JOB,
      postgresql_where=_NOT_EVENT_JOB)


class ConnectionHistory(Base):
    """What happened to a connection that no other table keeps: status changes, granted-scope
    changes, refresh failures, and successful refreshes as one row per user and UTC day (`day`
    set, `count` how many). Read by `fitglue history`; kept FITGLUE_HISTORY_RETENTION_DAYS."""

    __tablename__ = "connection_history"
    __table_args__ = (
        Index("ix_history_user_at", "user_id", "at"),
        # The one refresh_ok row per user and day (NULL `day` on every other row never collides).
        Index("ux_history_user_kind_day", "user_id", "kind", "day", unique=True),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    kind: Mapped[str] = mapped_column(String(30))
    summary: Mapped[str] = mapped_column(Text)
    # status_changed: the new status; refresh_failed: the error class; scopes_changed: the new scopes.
    detail: Mapped[str | None] = mapped_column(String(200))
    day: Mapped[str | None] = mapped_column(String(10))
    count: Mapped[int] = mapped_column(Integer, default=1)


class BulkLinkRun(Base):
    """One "send Connect links to everyone with FINDING" run, from Slack (run by the queue worker) or
    the CLI (in its own process). `active_key` holds the finding while the run is queued or running
    and NULL after: its unique index lets only one run per finding be active on every replica.
    Counts only; the links themselves are never stored here. Kept FITGLUE_BULK_RUN_RETENTION_DAYS."""

    __tablename__ = "bulk_link_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    finding: Mapped[str] = mapped_column(String(40))
    since: Mapped[datetime | None] = mapped_column(UTCDateTime())
    force: Mapped[bool] = mapped_column(Boolean, default=False)
    requested_by: Mapped[str] = mapped_column(String(200))  # the audit actor, e.g. slack:U123 or cli:alice
    agent_slack_id: Mapped[str | None] = mapped_column(String(40))  # who gets the CSV and the report (Slack)
    # Slack's response URL of the asking message (progress updates; valid 30 minutes, 5 uses).
    response_url: Mapped[str | None] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(20), default="queued")  # queued | running | done | failed
    active_key: Mapped[str | None] = mapped_column(String(40), unique=True)
    total: Mapped[int] = mapped_column(Integer, default=0)
    sent: Mapped[int] = mapped_column(Integer, default=0)
    to_file: Mapped[int] = mapped_column(Integer, default=0)
    skipped: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
