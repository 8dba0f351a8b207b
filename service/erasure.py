"""Erasing a FitGlue user ("forget"): deauthorize at Strava, delete their data, keep no e-mail.

What stays is one anonymised audit entry. Earlier audit entries that named the e-mail are
re-labelled with the same anonymous label, so the history of actions survives without the person.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, func, select, update

from .crypto import DecryptionError
from .db.models import (
    ActivityNotFound,
    ActivitySummary,
    AuditEntry,
    ConnectLink,
    Job,
    OAuthAttempt,
    StravaConnection,
    UnconfirmedEventCalls,
    User,
    WebhookEvent,
)
from .runtime import Runtime
from .strava import StravaError
from .tokens import access_token


def anonymous_label(email: str) -> str:
    """``user:sha256:<12 hex>`` of the lower-cased e-mail: lets an operator confirm that a given
    address was erased (by hashing it again) without the log naming anyone."""
    return "user:sha256:" + hashlib.sha256(email.strip().lower().encode()).hexdigest()[:12]


@dataclass(frozen=True)
class ForgetResult:
    forgotten: str  # the anonymous label the audit log now uses
    deauthorized: bool
    warning: str | None
    deleted: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"forgotten": self.forgotten, "deauthorized": self.deauthorized, "warning": self.warning,
                "deleted": dict(self.deleted)}


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


async def erase_user(rt: Runtime, user_id: int, email: str) -> dict[str, int]:
    """Delete everything of one user in one transaction; the number of rows per table."""
    label = anonymous_label(email)
    deleted: dict[str, int] = {}
    async with rt.write() as session:
        conn = (await session.execute(select(StravaConnection).where(StravaConnection.user_id == user_id))
                ).scalar_one_or_none()
        athlete_id = conn.athlete_id if conn is not None else None
        athlete_ids = {a for a in (athlete_id,) if a is not None}
        # The athlete ids of earlier attempts (e.g. one refused as a conflict) are theirs too, but
        # never one still connected to somebody else.
        attempt_athletes = (await session.execute(
            select(OAuthAttempt.athlete_id).where(OAuthAttempt.user_id == user_id,
                                                 OAuthAttempt.athlete_id.is_not(None)))).scalars().all()
        for candidate in {a for a in attempt_athletes if a is not None} - athlete_ids:
            owner = (await session.execute(select(StravaConnection.user_id).where(
                StravaConnection.athlete_id == candidate))).scalar_one_or_none()
            if owner is None:
                athlete_ids.add(candidate)

        async def remove(name: str, statement: Any) -> None:
            result = await session.execute(statement)
            deleted[name] = deleted.get(name, 0) + (result.rowcount or 0)  # type: ignore[attr-defined]

        if athlete_ids:
            await remove("activity_summaries", delete(ActivitySummary).where(ActivitySummary.athlete_id.in_(athlete_ids)))
            await remove("webhook_events", delete(WebhookEvent).where(WebhookEvent.owner_id.in_(athlete_ids)))
            await remove("activity_not_found",
                         delete(ActivityNotFound).where(ActivityNotFound.athlete_id.in_(athlete_ids)))
            await remove("unconfirmed_event_calls",
                         delete(UnconfirmedEventCalls).where(UnconfirmedEventCalls.athlete_id.in_(athlete_ids)))
        await remove("jobs", delete(Job).where(Job.user_id == user_id))
        await remove("oauth_attempts", delete(OAuthAttempt).where(OAuthAttempt.user_id == user_id))
        await remove("connect_links", delete(ConnectLink).where(ConnectLink.user_id == user_id))
        await remove("strava_connections", delete(StravaConnection).where(StravaConnection.user_id == user_id))
        await remove("users", delete(User).where(User.id == user_id))
        relabelled = await session.execute(
            update(AuditEntry).where(func.lower(AuditEntry.target) == email.strip().lower()).values(target=label))
        deleted["audit_entries_anonymised"] = relabelled.rowcount or 0  # type: ignore[attr-defined]
    return deleted
