"""Erasing data: a FitGlue user ("forget"), and an athlete's Strava data when their grant ends.

`forget` deauthorizes at Strava, deletes the user's data and keeps no e-mail. What stays is the
audit log, where every entry that named the user (by e-mail or athlete id) is re-labelled
`user:hmac:<16 hex>`: an HMAC of the e-mail keyed by a random salt made once per installation and
kept in the database. Without the salt a guessed address cannot be confirmed against the label;
rotating FITGLUE_SECRET_KEY does not change it, so one person's entries stay grouped.

When a grant ends (a confirmed deauthorization, `disconnect`, `forget`, or a grant found dead that
stays dead past FITGLUE_DEAD_GRANT_RETENTION_DAYS), Strava's API Agreement requires deleting what
Strava told us about the athlete: `delete_strava_data` is the one place that does it.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import String, and_, cast, delete, exists, func, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from service.connections.tokens import access_token
from service.core.crypto import DecryptionError
from service.core.runtime import Runtime
from service.db.app_state import get_or_create_value, get_value
from service.db.models import (
    ActivityNotFound,
    ActivitySummary,
    AuditEntry,
    ConnectionHistory,
    ConnectLink,
    Job,
    OAuthAttempt,
    StravaConnection,
    UnconfirmedEventCalls,
    User,
    WebhookEvent,
)
from service.outbox import announce_erasure, erase_outbox
from service.queue.store import DONE, RUNNING
from service.strava import StravaError
from service.subscription.state import EVENT_JOB_KEY_PREFIX
from service.subscription.state import JOB_KIND as EVENT_JOB_KIND
from troubleshooting.vocabulary import ConnectionStatus

# app_state key of the installation's label salt (64 hex digits); migration 0006 uses the same key.
LABEL_SALT_KEY = "erasure.label_salt"
LABEL_PREFIX = "user:hmac:"
# Strava's object_type of deauthorization events: they carry nothing but ids, so they may stay.
DEAUTHORIZATION_OBJECT = "athlete"


# --- what `forget` erases, table by table -------------------------------------------------------------


@dataclass(frozen=True)
class Erased:
    """Rows of the user go (`deleted`), or their mentions are replaced by the label (`anonymised`).
    `columns` are those that can tie a row to them: their user id, e-mail, athlete id or text
    naming them, or the key of an erased row (an event job's `event:<id>`)."""

    columns: tuple[str, ...]
    how: str = "deleted"


@dataclass(frozen=True)
class NoUserData:
    why: str


# Every table (tests/integration/test_erasure.py walks Base.metadata against it): a table added
# without an entry, or a user-looking column left out, fails that test.
ERASURE: dict[str, Erased | NoUserData] = {
    "users": Erased(("id", "email", "email_normalized")),
    "strava_connections": Erased(("user_id", "athlete_id")),
    "connect_links": Erased(("user_id",)),
    "connection_history": Erased(("user_id",)),
    "oauth_attempts": Erased(("user_id", "athlete_id", "reason")),
    "jobs": Erased(("user_id", "dedupe_key")),
    "webhook_events": Erased(("owner_id",)),
    "activity_summaries": Erased(("athlete_id",)),
    "activity_not_found": Erased(("athlete_id",)),
    "unconfirmed_event_calls": Erased(("athlete_id",)),
    "audit_log": Erased(("target", "detail"), how="anonymised"),
    "bulk_link_runs": NoUserData("bulk Connect-link runs: a finding, counts and the asking agent; no user"),
    "outbound_events": Erased(("athlete_id", "user_id")),  # a pending revocation or erasure stays, redacted
    "rate_limit_state": NoUserData("app-wide call counts per Strava budget"),
    "webhook_registrations": NoUserData("the app's push-subscription steps; the actor is an agent"),
    "app_state": NoUserData("app-wide facts: subscription id, label salt, alert incidents"),
}


# --- the anonymous label -----------------------------------------------------------------------------


def anonymous_label(email: str, salt: bytes) -> str:
    """``user:hmac:<16 hex>``: HMAC-SHA256 of the lower-cased e-mail under the installation's salt."""
    digest = hmac.new(salt, email.strip().lower().encode(), hashlib.sha256).hexdigest()
    return LABEL_PREFIX + digest[:16]


async def label_salt(rt: Runtime) -> bytes:
    """The installation's label salt, made (randomly, 256 bits) and stored the first time it is needed."""
    async with rt.sessions() as session:
        stored = await get_value(session, LABEL_SALT_KEY)
    if stored is None:
        async with rt.write() as session:
            stored = await get_or_create_value(session, LABEL_SALT_KEY, secrets.token_hex(32), rt.clock.now())
    return bytes.fromhex(stored)


async def erasure_label(rt: Runtime, email: str) -> str:
    """The label the audit log uses for `email` once it is forgotten."""
    return anonymous_label(email, await label_salt(rt))


# --- an athlete's Strava data ------------------------------------------------------------------------


def _count(result: Any) -> int:
    return int(result.rowcount or 0)


async def _delete_events(session: AsyncSession, condition: ColumnElement[bool]) -> tuple[int, int]:
    """Delete the stored webhook events matching `condition` and the jobs that would process them
    (except one running right now: it finds its event gone and ends). (events, jobs) deleted."""
    event_ids = select(WebhookEvent.id).where(condition)
    job_keys = select(literal(EVENT_JOB_KEY_PREFIX) + cast(WebhookEvent.id, String)).where(condition)
    jobs = await session.execute(delete(Job).where(Job.kind == EVENT_JOB_KIND, Job.state != RUNNING,
                                                   Job.dedupe_key.in_(job_keys)))
    events = await session.execute(delete(WebhookEvent).where(WebhookEvent.id.in_(event_ids)))
    return _count(events), _count(jobs)


async def delete_strava_data(session: AsyncSession, athlete_ids: Collection[int],
                             user_ids: Collection[int] = ()) -> dict[str, int]:
    """Delete, in the caller's transaction, what Strava told us about these athletes: their activity
    summaries, their stored activity events (the payloads carry titles) with those events' jobs, the
    work still waiting for these users (it could only fetch more), and their outbound events (a
    pending revocation or erasure stays, redacted to the athlete id). Rows deleted, per table.

    Kept: the connection row with its status (the diagnosis needs it) and the athlete's
    deauthorization events, which carry nothing but ids; both go with `forget` or retention.
    """
    deleted = {"activity_summaries": 0, "webhook_events": 0, "jobs": 0}
    athletes, users = sorted(set(athlete_ids)), sorted(set(user_ids))
    if athletes:
        result = await session.execute(delete(ActivitySummary).where(ActivitySummary.athlete_id.in_(athletes)))
        deleted["activity_summaries"] = _count(result)
        # What Strava answered (404s) about these athletes' activities, and our count of checks.
        for model in (ActivityNotFound, UnconfirmedEventCalls):
            result = await session.execute(delete(model).where(model.athlete_id.in_(athletes)))
            deleted[model.__tablename__] = _count(result)
        events, jobs = await _delete_events(session, and_(WebhookEvent.owner_id.in_(athletes),
                                                          WebhookEvent.object_type != DEAUTHORIZATION_OBJECT))
        deleted["webhook_events"], deleted["jobs"] = events, jobs
    deleted["outbound_events"] = await erase_outbox(session, athletes, users)
    if users:
        # Event jobs belong to their events: one whose event is kept must still run.
        result = await session.execute(delete(Job).where(Job.user_id.in_(users), Job.kind != EVENT_JOB_KIND,
                                                         Job.state.not_in((RUNNING, DONE))))
        deleted["jobs"] += _count(result)
    return deleted


def _grant_ended(dead_before: Any) -> ColumnElement[bool]:
    """Revoked, or found dead (needs_reauth) before `dead_before` and not re-authorized since."""
    return or_(StravaConnection.status == ConnectionStatus.REVOKED,
               and_(StravaConnection.status == ConnectionStatus.NEEDS_REAUTH,
                    or_(StravaConnection.status_changed_at.is_(None),
                        StravaConnection.status_changed_at <= dead_before)))


async def delete_data_of_ended_grants(rt: Runtime) -> dict[str, int]:
    """The sweep's part of Strava's rule: delete the Strava data of every grant that ended and still
    has some (a grant dead for FITGLUE_DEAD_GRANT_RETENTION_DAYS counts as ended), and activity
    summaries of athletes no connection names any more. Rows deleted, per table."""
    dead_before = rt.clock.now() - timedelta(days=rt.settings.dead_grant_retention_days)
    has_data = or_(
        exists().where(ActivitySummary.athlete_id == StravaConnection.athlete_id),
        exists().where(WebhookEvent.owner_id == StravaConnection.athlete_id, WebhookEvent.object_type != DEAUTHORIZATION_OBJECT))
    async with rt.write() as session:
        rows = (await session.execute(select(StravaConnection.athlete_id, StravaConnection.user_id).where(
            _grant_ended(dead_before), StravaConnection.athlete_id.is_not(None), has_data))).all()
        deleted = await delete_strava_data(session, [r[0] for r in rows if r[0] is not None], [r[1] for r in rows])
        named = select(StravaConnection.athlete_id).where(StravaConnection.athlete_id.is_not(None))
        orphans = _count(await session.execute(delete(ActivitySummary).where(ActivitySummary.athlete_id.not_in(named))))
    deleted["activity_summaries"] = deleted.get("activity_summaries", 0) + orphans
    return {table: n for table, n in deleted.items() if n}


# --- forget ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ForgetResult:
    forgotten: str | None  # the anonymous label the audit log now uses; None: there was no such user
    deauthorized: bool
    warning: str | None
    deleted: dict[str, int] = field(default_factory=dict)


async def deauthorize_quietly(rt: Runtime, conn: StravaConnection | None) -> tuple[bool, str | None]:
    """Try to deauthorize at Strava; (done, warning). Never raises for Strava's failures."""
    if conn is None:
        return False, None
    try:
        token = access_token(conn, rt.cipher)
    except DecryptionError:
        token = None
    if not token:
        return False, None
    if rt.strava is None:
        return False, "Strava is not configured, so FitGlue could not deauthorize there"
    try:
        await rt.strava.deauthorize(token)
    except StravaError as exc:
        return False, f"Strava did not confirm the deauthorization ({exc.summary})"
    return True, None


async def _athletes_of(session: AsyncSession, user_id: int) -> set[int]:
    """The athlete ids that are this user's: the connected one, and those of earlier attempts (e.g.
    one refused as a conflict) unless another user's connection holds them now."""
    conn_athlete = (await session.execute(select(StravaConnection.athlete_id).where(
        StravaConnection.user_id == user_id))).scalar_one_or_none()
    athletes = {conn_athlete} if conn_athlete is not None else set()
    attempted = (await session.execute(select(OAuthAttempt.athlete_id).where(
        OAuthAttempt.user_id == user_id, OAuthAttempt.athlete_id.is_not(None)).distinct())).scalars().all()
    for candidate in {a for a in attempted if a is not None} - athletes:
        owner = (await session.execute(select(StravaConnection.user_id).where(
            StravaConnection.athlete_id == candidate))).scalar_one_or_none()
        if owner is None:
            athletes.add(candidate)
    return athletes


def _mention_pattern(email: str, athlete_ids: Collection[int]) -> re.Pattern[str]:
    """The e-mail (not as part of a longer address) or an athlete id (not part of a longer number)."""
    address = re.escape(email.strip().lower())
    parts = [rf"(?<![\w.!#$%&'*+/=?^`{{|}}~-]){address}(?![\w-]|\.\w)"]
    parts += [rf"(?<!\d){a}(?!\d)" for a in sorted(athlete_ids)]
    return re.compile("|".join(parts), re.IGNORECASE)


async def _anonymise_audit(session: AsyncSession, email: str, athlete_ids: Collection[int], label: str) -> int:
    """Replace every mention of the user in the audit log (their e-mail, any of their athlete ids, in
    the target or the detail) by `label`. How many entries changed."""
    pattern = _mention_pattern(email, athlete_ids)
    needles = [email.strip().lower(), *(str(a) for a in athlete_ids)]
    mentions = or_(*(func.lower(column).contains(needle, autoescape=True)
                     for column in (AuditEntry.target, AuditEntry.detail) for needle in needles))
    changed = 0
    for entry_id, target, detail in (await session.execute(
            select(AuditEntry.id, AuditEntry.target, AuditEntry.detail).where(mentions))).all():
        # The SQL match is a superset (al@x.com is inside val@x.com): the pattern decides.
        new_target = pattern.sub(label, target) if target else target
        new_detail = pattern.sub(label, detail) if detail else detail
        if (new_target, new_detail) != (target, detail):
            await session.execute(update(AuditEntry).where(AuditEntry.id == entry_id)
                                  .values(target=new_target, detail=new_detail))
            changed += 1
    return changed


async def erase_user(rt: Runtime, user_id: int, email: str, label: str) -> dict[str, int]:
    """Delete everything of one user in one transaction, anonymise the audit log under `label` and
    announce `fitglue.user.erased` (the athlete id and the label, no e-mail); the number of rows per table."""
    async with rt.write() as session:
        athlete_ids = await _athletes_of(session, user_id)
        connected = await session.scalar(select(StravaConnection.athlete_id).where(StravaConnection.user_id == user_id))
        deleted = await delete_strava_data(session, athlete_ids, [user_id])

        async def remove(name: str, statement: Any) -> None:
            deleted[name] = deleted.get(name, 0) + _count(await session.execute(statement))

        if athlete_ids:  # the deauthorization events delete_strava_data keeps
            events, jobs = await _delete_events(session, WebhookEvent.owner_id.in_(athlete_ids))
            deleted["webhook_events"] += events
            deleted["jobs"] += jobs
        await remove("jobs", delete(Job).where(Job.user_id == user_id))
        await remove("oauth_attempts", delete(OAuthAttempt).where(OAuthAttempt.user_id == user_id))
        for athlete in athlete_ids:  # another user's attempt, refused because the athlete was theirs
            await session.execute(update(OAuthAttempt).where(OAuthAttempt.athlete_id == athlete).values(
                athlete_id=None, granted_scopes=None,
                reason=func.replace(OAuthAttempt.reason, str(athlete), "(erased)")))
        await remove("connect_links", delete(ConnectLink).where(ConnectLink.user_id == user_id))
        await remove("connection_history", delete(ConnectionHistory).where(ConnectionHistory.user_id == user_id))
        await remove("strava_connections", delete(StravaConnection).where(StravaConnection.user_id == user_id))
        await remove("users", delete(User).where(User.id == user_id))
        deleted["audit_entries_anonymised"] = await _anonymise_audit(session, email, athlete_ids, label)
        await announce_erasure(session, rt.settings, rt.clock.now(), connected, label)
    return deleted
