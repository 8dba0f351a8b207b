"""The tables a user's history is read from, one `Source` each, and how a row becomes an entry.

Every source reads one user's newest rows older than a cursor through an index that starts with
the user's key (support_tables.py / migration 0008), so each read is a bounded range scan. A
source's position in `SOURCES` is its number in the cursor; append new sources at the end.
"""

from __future__ import annotations

import heapq
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, literal_column, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from service.connections import history_log
from service.core.clock import iso_utc
from service.core.redact import scrub_text
from service.db.models import (
    AuditEntry,
    ConnectionHistory,
    ConnectLink,
    Job,
    OAuthAttempt,
    OutboundEvent,
    WebhookEvent,
)
from service.subscription.state import IGNORED, NEW, PROCESSED
from service.subscription.state import JOB_KIND as EVENT_JOB
from troubleshooting.vocabulary import FAILED_ATTEMPT_OUTCOMES

# Help-article sections (troubleshooting.vocabulary.ARTICLE_ANCHORS) an agent reads beside an entry.
SETUP, PERMISSIONS, AUTH_FAILED = "#setup", "#permissions-requested", "#authorization-failed"
WEBHOOKS, RATE_LIMITS, OVERVIEW = "#strava-webhook-not-receiving", "#rate-limiting", "#overview"
REAUTH, REVOKING = "#connected-but-needs-re-authorization", "#revoking-access"
STATUS_ARTICLE = {"connected": SETUP, "needs_reauth": REAUTH, "revoked": REVOKING, "not_connected": REVOKING}
MAX_TEXT = 300


@dataclass(frozen=True)
class Subject:
    user_id: int
    email: str
    athlete_id: int | None


@dataclass(frozen=True)
class Cursor:
    at: datetime
    source: int
    row_id: int


@dataclass(frozen=True)
class HistoryEntry:
    at: datetime
    kind: str
    summary: str
    article: str
    ids: dict[str, Any] = field(default_factory=dict)
    source: int = 0
    row_id: int = 0

    @property
    def sort_key(self) -> tuple[datetime, int, int]:
        return (self.at, self.source, self.row_id)

    def to_dict(self) -> dict[str, Any]:
        return {"at": iso_utc(self.at), "kind": self.kind, "summary": self.summary, "article": self.article,
                **self.ids}


def _text(value: str | None) -> str:
    text = scrub_text(value or "").strip()
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def older_than(at: Any, row_id: Any, source: int, cursor: Cursor | None) -> ColumnElement[bool]:
    """Rows of `source` after `cursor` in (time, source, row id) order, newest first."""
    if cursor is None:
        return true()
    if source < cursor.source:
        return at <= cursor.at
    if source > cursor.source:
        return at < cursor.at
    return or_(at < cursor.at, and_(at == cursor.at, row_id < cursor.row_id))


Reader = Callable[[AsyncSession, Subject, int, "Cursor | None", int], Awaitable[list[HistoryEntry]]]


async def _rows(session: AsyncSession, model: Any, at: Any, key: ColumnElement[bool], limit: int,
                cursor: Cursor | None, source: int) -> list[Any]:
    # Plain rows (columns by name), not ORM objects: a page reads up to 300 rows and builds no identity map.
    query = (select(*model.__table__.c).where(key, older_than(at, model.id, source, cursor))
             .order_by(at.desc(), model.id.desc()).limit(limit))
    return list((await session.execute(query)).all())


# --- one reader per table ---------------------------------------------------------------------------


# Link ids are random strings, not numbers, and a cursor must not carry them: within one instant
# links are numbered by position instead (row id GROUP_TOP - n for the n-th, newest first).
GROUP_TOP = 10**9


async def read_links(session: AsyncSession, who: Subject, limit: int, cursor: Cursor | None,
                     source: int) -> list[HistoryEntry]:
    skip = GROUP_TOP - cursor.row_id if cursor is not None and cursor.source == source else 0
    time_cut = true() if cursor is None else (ConnectLink.created_at <= cursor.at if source <= cursor.source
                                              else ConnectLink.created_at < cursor.at)
    query = (select(*ConnectLink.__table__.c).where(ConnectLink.user_id == who.user_id, time_cut)
             .order_by(ConnectLink.created_at.desc(), ConnectLink.id.desc()).limit(limit + max(skip, 0)))
    out: list[HistoryEntry] = []
    previous, position = None, 0
    for link in (await session.execute(query)).all():
        position = position + 1 if link.created_at == previous else 1
        previous = link.created_at
        if cursor is not None and link.created_at == cursor.at and position <= skip:
            continue
        used = f"; used {iso_utc(link.used_at)}" if link.used_at else ""
        # Never the link itself, nor its id (the signed token's subject).
        out.append(HistoryEntry(link.created_at, "link_issued", _text(
            f"Connect link issued by {link.issued_by}, valid until {iso_utc(link.expires_at)}{used}"), SETUP,
            {}, source, GROUP_TOP - position))
    return out[:limit]


async def read_attempts(session: AsyncSession, who: Subject, limit: int, cursor: Cursor | None,
                        source: int) -> list[HistoryEntry]:
    rows = await _rows(session, OAuthAttempt, OAuthAttempt.started_at, OAuthAttempt.user_id == who.user_id, limit,
                       cursor, source)
    out = []
    for a in rows:
        text = f"Connect attempt: {a.outcome}"
        if a.reason:
            text += f" — {a.reason}"
        if a.granted_scopes is not None:
            text += f" (granted: {a.granted_scopes or 'nothing'})"
        article = AUTH_FAILED if a.outcome in FAILED_ATTEMPT_OUTCOMES or a.outcome == "pending" else (
            PERMISSIONS if a.outcome == "partial" else SETUP)
        out.append(HistoryEntry(a.started_at, "oauth_attempt", _text(text), article,
                                {"attempt_id": a.id, "outcome": a.outcome}, source, a.id))
    return out


def _history_entry(row: Any, source: int) -> HistoryEntry:
    article: str = OVERVIEW
    ids: dict[str, Any] = {}
    summary = row.summary
    if row.kind == history_log.STATUS_CHANGED:
        article, ids = STATUS_ARTICLE.get(row.detail or "", OVERVIEW), {"status": row.detail}
    elif row.kind == history_log.SCOPES_CHANGED:
        article = PERMISSIONS
    elif row.kind == history_log.REFRESH_FAILED:
        article = RATE_LIMITS if row.detail == "rate_limited" else REAUTH
        ids = {"error_class": row.detail}
    elif row.kind == history_log.REFRESH_OK:
        summary = "token refreshed" + (f" {row.count} times this day (latest shown)" if row.count > 1 else "")
        ids = {"count": row.count}
    return HistoryEntry(row.at, row.kind, _text(summary), article, ids, source, row.id)


async def read_changes(session: AsyncSession, who: Subject, limit: int, cursor: Cursor | None,
                       source: int) -> list[HistoryEntry]:
    rows = await _rows(session, ConnectionHistory, ConnectionHistory.at, ConnectionHistory.user_id == who.user_id,
                       limit, cursor, source)
    return [_history_entry(row, source) for row in rows]


_EVENT_STATE = {NEW: "waiting to be processed", PROCESSED: "processed", IGNORED: "ignored"}


async def read_events(session: AsyncSession, who: Subject, limit: int, cursor: Cursor | None,
                      source: int) -> list[HistoryEntry]:
    if who.athlete_id is None:
        return []
    rows = await _rows(session, WebhookEvent, WebhookEvent.received_at, WebhookEvent.owner_id == who.athlete_id,
                       limit, cursor, source)
    out = []
    for e in rows:
        became = _EVENT_STATE.get(e.state, e.state)
        text = f"webhook: {e.object_type} {e.object_id} {e.aspect_type} — {became}"
        if e.error:
            text += f": {e.error}"
        elif e.state == PROCESSED and e.object_type == "activity" and e.aspect_type != "delete":
            text += " (fetched from Strava)"
        out.append(HistoryEntry(e.received_at, "webhook_event", _text(text), WEBHOOKS,
                                {"event_id": e.id, "object_id": e.object_id, "state": e.state}, source, e.id))
    return out


# The literal (not a bound parameter) lets both databases use the partial index ix_jobs_user_history.
_NOT_EVENT_JOB = literal_column("kind") != literal_column(f"'{EVENT_JOB}'")


async def read_jobs(session: AsyncSession, who: Subject, limit: int, cursor: Cursor | None,
                    source: int) -> list[HistoryEntry]:
    key = and_(Job.user_id == who.user_id, _NOT_EVENT_JOB)
    rows = await _rows(session, Job, Job.created_at, key, limit, cursor, source)
    out = []
    for j in rows:
        text = f"job {j.kind} #{j.id}: {j.state}, {j.attempts} attempt(s)"
        if j.waiting_for:
            text += f", waiting for {j.waiting_for.replace('_', ' ')}"
        if j.finished_at:
            text += f", settled {iso_utc(j.finished_at)}"
        if j.last_error:
            text += f" — {j.last_error}"
        article = RATE_LIMITS if j.waiting_for == "rate_limit" else WEBHOOKS
        out.append(HistoryEntry(j.created_at, "job", _text(text), article, {"job_id": j.id, "state": j.state},
                                source, j.id))
    return out


async def read_agent_actions(session: AsyncSession, who: Subject, limit: int, cursor: Cursor | None,
                             source: int) -> list[HistoryEntry]:
    targets = [who.email.lower()] + ([str(who.athlete_id)] if who.athlete_id is not None else [])
    streams = [await _rows(session, AuditEntry, AuditEntry.at, func.lower(AuditEntry.target) == target, limit,
                           cursor, source) for target in targets]
    merged = heapq.merge(*streams, key=lambda a: (a.at, a.id), reverse=True)
    out = []
    for a in list(merged)[:limit]:
        text = f"{a.actor}: {a.action} → {a.result}" + (f" ({a.detail})" if a.detail else "")
        out.append(HistoryEntry(a.at, "agent_action", _text(text), OVERVIEW, {"audit_id": a.id}, source, a.id))
    return out


async def read_deliveries(session: AsyncSession, who: Subject, limit: int, cursor: Cursor | None,
                          source: int) -> list[HistoryEntry]:
    """Outbound events about the user for FitGlue's other services, and how their delivery went."""
    rows = await _rows(session, OutboundEvent, OutboundEvent.created_at, OutboundEvent.user_id == who.user_id, limit,
                       cursor, source)
    out = []
    for e in rows:
        text = f"outbound event {e.type}: {e.state}, {e.attempts} attempt(s)"
        if e.delivered_at:
            text += f", delivered {iso_utc(e.delivered_at)}"
        if e.last_error and e.state != "delivered":
            text += f" — {e.last_error}"
        out.append(HistoryEntry(e.created_at, "event_delivery", _text(text), OVERVIEW,
                                {"outbound_event_id": e.id, "webhook_id": e.webhook_id, "state": e.state}, source,
                                e.id))
    return out


@dataclass(frozen=True)
class Source:
    name: str
    reader: Reader
    number: int

    async def read(self, session: AsyncSession, who: Subject, limit: int, cursor: Cursor | None
                   ) -> list[HistoryEntry]:
        return await self.reader(session, who, limit, cursor, self.number)


SOURCES: tuple[Source, ...] = tuple(Source(name, reader, n) for n, (name, reader) in enumerate((
    ("webhook_events", read_events),
    ("jobs", read_jobs),
    ("oauth_attempts", read_attempts),
    ("connect_links", read_links),
    ("connection_history", read_changes),
    ("audit_log", read_agent_actions),
    ("outbound_events", read_deliveries),
)))
