"""How long each table keeps its rows, and the sweep that applies it.

`RULES` names every table. One that grows with traffic has one or more `Rule`s, each keyed to a
FITGLUE_… setting (in days, or in seconds where the setting's name ends in `_S`); one that does not
says why (`Bounded`). The test that walks
`Base.metadata` (tests/integration/test_retention.py) fails for a table added without an entry.

The sweep runs every FITGLUE_RETENTION_INTERVAL_S on every replica (plain DELETEs by age, safe to
repeat), each rule in its own short transaction. It also deletes the Strava data of grants that
ended (`erasure.delete_data_of_ended_grants`), so a grant found dead loses its data at most
FITGLUE_DEAD_GRANT_RETENTION_DAYS plus one interval after it died.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from service.background.webhooks import processing as events
from service.background.webhooks import unconfirmed
from service.connections.erasure import delete_data_of_ended_grants
from service.core.runtime import Runtime
from service.db.models import (
    ActivitySummary,
    AuditEntry,
    BulkLinkRun,
    ConnectionHistory,
    ConnectLink,
    Job,
    OAuthAttempt,
    WebhookEvent,
    WebhookRegistration,
)
from service.outbox.outbox_ops import prune_delivered, prune_failed
from service.queue.store import FAILED, prune_done

log = logging.getLogger(__name__)

# Rows older than the cutoff go; the number deleted comes back.
Prune = Callable[[AsyncSession, datetime], Awaitable[int]]


DAY_S = 86400


@dataclass(frozen=True)
class Rule:
    setting: str  # the Settings attribute, e.g. "retention_days"
    variable: str  # its environment variable
    what: str  # which rows go, and when (README's retention table)
    prune: Prune
    unit_s: int = DAY_S  # seconds per unit of the setting

    def period(self, settings: Any) -> timedelta:
        """How long rows are kept under this rule, with the current settings."""
        return timedelta(seconds=getattr(settings, self.setting) * self.unit_s)


@dataclass(frozen=True)
class Bounded:
    """A table that does not grow with traffic, and why."""

    why: str


def _count(result: Any) -> int:
    return int(result.rowcount or 0)


async def _failed_jobs(session: AsyncSession, cutoff: datetime) -> int:
    return _count(await session.execute(delete(Job).where(Job.state == FAILED, Job.finished_at < cutoff)))


async def _settled_events(session: AsyncSession, cutoff: datetime) -> int:
    return _count(await session.execute(delete(WebhookEvent).where(
        WebhookEvent.state.in_((events.PROCESSED, events.IGNORED)), WebhookEvent.processed_at < cutoff)))


async def _failed_events(session: AsyncSession, cutoff: datetime) -> int:
    return _count(await session.execute(delete(WebhookEvent).where(
        WebhookEvent.state == events.FAILED, WebhookEvent.processed_at < cutoff)))


async def _old_attempts(session: AsyncSession, cutoff: datetime) -> int:
    # Each user's newest attempt stays: the diagnosis explains a failed Connect from it.
    newest = select(func.max(OAuthAttempt.id)).group_by(OAuthAttempt.user_id)
    return _count(await session.execute(delete(OAuthAttempt).where(
        OAuthAttempt.started_at < cutoff, OAuthAttempt.id.not_in(newest))))


async def _expired_links(session: AsyncSession, cutoff: datetime) -> int:
    return _count(await session.execute(delete(ConnectLink).where(ConnectLink.expires_at < cutoff)))


async def _old_registrations(session: AsyncSession, cutoff: datetime) -> int:
    # The newest stays: the diagnosis and the alerts read the last registration's outcome.
    newest = select(func.max(WebhookRegistration.id))
    return _count(await session.execute(delete(WebhookRegistration).where(
        WebhookRegistration.at < cutoff, WebhookRegistration.id.not_in(newest))))


async def _old_audit(session: AsyncSession, cutoff: datetime) -> int:
    return _count(await session.execute(delete(AuditEntry).where(AuditEntry.at < cutoff)))


async def _old_history(session: AsyncSession, cutoff: datetime) -> int:
    return _count(await session.execute(delete(ConnectionHistory).where(ConnectionHistory.at < cutoff)))


async def _old_bulk_runs(session: AsyncSession, cutoff: datetime) -> int:
    return _count(await session.execute(delete(BulkLinkRun).where(BulkLinkRun.finished_at < cutoff)))


async def _deleted_activities(session: AsyncSession, cutoff: datetime) -> int:
    return _count(await session.execute(delete(ActivitySummary).where(ActivitySummary.deleted_at < cutoff)))


RULES: dict[str, tuple[Rule, ...] | Bounded] = {
    "users": Bounded("one row per person an agent named; removed only by `fitglue forget`"),
    "strava_connections": Bounded("at most one per user (unique user_id); removed with the user"),
    "rate_limit_state": Bounded("one row per Strava budget (overall, read)"),
    "app_state": Bounded("a fixed set of app-wide keys (subscription id, label salt, alert incidents)"),
    "jobs": (
        Rule("retention_days", "FITGLUE_RETENTION_DAYS", "finished jobs, after they finished", prune_done),
        Rule("failed_retention_days", "FITGLUE_FAILED_RETENTION_DAYS",
             "parked (failed) jobs, after they were parked; until then `fitglue jobs retry` can run them again",
             _failed_jobs),
    ),
    "webhook_events": (
        Rule("retention_days", "FITGLUE_RETENTION_DAYS", "processed and ignored events, after they settled",
             _settled_events),
        Rule("failed_retention_days", "FITGLUE_FAILED_RETENTION_DAYS", "failed events, with their parked jobs",
             _failed_events),
    ),
    "activity_summaries": (
        Rule("retention_days", "FITGLUE_RETENTION_DAYS",
             "summaries of activities Strava deleted, after the deletion; the others go when the athlete's "
             "grant ends", _deleted_activities),
    ),
    "oauth_attempts": (
        Rule("attempt_retention_days", "FITGLUE_ATTEMPT_RETENTION_DAYS",
             "Connect attempts, after they started; each user's newest stays for the diagnosis", _old_attempts),
    ),
    "connect_links": (
        Rule("link_retention_days", "FITGLUE_LINK_RETENTION_DAYS", "Connect links, after they expired",
             _expired_links),
    ),
    "webhook_registrations": (
        Rule("registration_retention_days", "FITGLUE_REGISTRATION_RETENTION_DAYS",
             "records of push-subscription registrations; the newest stays", _old_registrations),
    ),
    "activity_not_found": (
        Rule("not_found_memo_s", "FITGLUE_NOT_FOUND_MEMO_S",
             "memos of Strava's 404 for an activity, once they expire (a forged or private id may then cost "
             "one call again)", unconfirmed.prune_memos, unit_s=1),
    ),
    "unconfirmed_event_calls": Bounded(
        "one row per athlete named by events in the current 15-minute window: every sweep deletes the "
        "counts of windows that have ended"),
    "connection_history": (
        Rule("history_retention_days", "FITGLUE_HISTORY_RETENTION_DAYS",
             "status and scope changes, refresh failures and daily refresh counts (`fitglue history`), after "
             "they happened", _old_history),
    ),
    "bulk_link_runs": (
        Rule("bulk_run_retention_days", "FITGLUE_BULK_RUN_RETENTION_DAYS",
             "finished bulk Connect-link runs (counts only), after they finished", _old_bulk_runs),
    ),
    "outbound_events": (
        Rule("events_retention_days", "FITGLUE_EVENTS_RETENTION_DAYS",
             "outbound events, after they were delivered (pending ones stay until delivered or parked)",
             prune_delivered),
        Rule("failed_retention_days", "FITGLUE_FAILED_RETENTION_DAYS",
             "parked (failed) outbound events, after they were parked; until then `fitglue events retry` can "
             "send them again", prune_failed),
    ),
    "audit_log": (
        Rule("audit_retention_days", "FITGLUE_AUDIT_RETENTION_DAYS",
             "audit entries (kept longest: at least as long as any other rule)", _old_audit),
    ),
}


async def sweep(rt: Runtime) -> dict[str, int]:
    """Apply every rule once, then delete the Strava data of ended grants; rows deleted per table
    (tables with nothing deleted are left out)."""
    now = rt.clock.now()
    deleted: dict[str, int] = {}
    for table, entry in RULES.items():
        if isinstance(entry, Bounded):
            continue
        for rule in entry:
            cutoff = now - rule.period(rt.settings)
            async with rt.write() as session:
                count = await rule.prune(session, cutoff)
            if count:
                deleted[table] = deleted.get(table, 0) + count
    async with rt.write() as session:
        if count := await unconfirmed.prune_past_windows(session, now):
            deleted["unconfirmed_event_calls"] = count
    for table, count in (await delete_data_of_ended_grants(rt)).items():
        deleted[table] = deleted.get(table, 0) + count
    return deleted
