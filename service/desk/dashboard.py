"""SupportDesk's read-only summary for dashboards (the Slack App Home): connections by status,
who needs to re-authorize, the last agent actions. One of the small services
`service.desk.support_desk.SupportDesk` is composed of."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, not_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from service.core.clock import iso_utc
from service.core.runtime import Runtime
from service.db.models import AuditEntry, StravaConnection, User
from service.desk.boundary import raises_only_support_error
from service.outbox.outbox_ops import outbox_health
from troubleshooting.permissions import grant_verdict, parse_scopes
from troubleshooting.vocabulary import ConnectionStatus, Severity

# Entries that only record that someone asked (the bot's request log), not what was done.
_REQUEST_ACTIONS = ("slack_command:%", "slack_button:%")


@dataclass(frozen=True)
class HomeSummary:
    generated_at: datetime
    connections_by_status: dict[str, int]
    needs_reauth: list[dict[str, Any]]  # newest first: email, since
    needs_reauth_total: int
    recent_actions: list[dict[str, Any]] = field(default_factory=list)  # newest first
    # Connected without something FitGlue needs (the grant verdict): email, missing scopes, severity, since
    missing_permissions: list[dict[str, Any]] = field(default_factory=list)  # most severe, then newest first
    missing_permissions_total: int = 0
    # The outbound events' health (pending, failed, oldest_pending_age_s, last_success_at); None while
    # FITGLUE_EVENTS_URL is unset.
    outbound: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"generated_at": iso_utc(self.generated_at), "connections_by_status": dict(self.connections_by_status),
                "needs_reauth": list(self.needs_reauth), "needs_reauth_total": self.needs_reauth_total,
                "missing_permissions": list(self.missing_permissions),
                "missing_permissions_total": self.missing_permissions_total,
                "recent_actions": list(self.recent_actions), "outbound": self.outbound}


@raises_only_support_error  # failures leave as SupportError only (service/desk/boundary.py)
class HomeOps:
    """`desk.home`: the dashboard summary of one runtime's connections and recent agent actions."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    async def summary(self, *, listed: int = 10) -> HomeSummary:
        async with self.rt.sessions() as session:
            counts: dict[str, int] = {status: 0 for status in (
                ConnectionStatus.CONNECTED, ConnectionStatus.NEEDS_REAUTH, ConnectionStatus.REVOKED,
                ConnectionStatus.NOT_CONNECTED)}
            # One pass over the connections: how many per status, and per connected grant.
            connected_grants: dict[str, int] = {}
            rows = await session.execute(select(StravaConnection.status, StravaConnection.granted_scopes, func.count())
                                         .group_by(StravaConnection.status, StravaConnection.granted_scopes))
            for status, scopes, count in rows:
                counts[status] = counts.get(status, 0) + count
                if status == ConnectionStatus.CONNECTED and scopes is not None:
                    connected_grants[scopes] = count
            # A user who never started connecting has no connection row yet.
            without = await session.scalar(select(func.count()).select_from(User).where(
                ~select(StravaConnection.id).where(StravaConnection.user_id == User.id).exists()))
            counts[ConnectionStatus.NOT_CONNECTED] += int(without or 0)
            waiting = await session.execute(
                select(User.email, StravaConnection.status_changed_at).join(StravaConnection)
                .where(StravaConnection.status == ConnectionStatus.NEEDS_REAUTH)
                .order_by(StravaConnection.status_changed_at.desc()).limit(listed))
            actions = await session.execute(
                select(AuditEntry).where(not_(or_(*(AuditEntry.action.like(p) for p in _REQUEST_ACTIONS))))
                .order_by(AuditEntry.at.desc(), AuditEntry.id.desc()).limit(listed))
            recent = [{"at": iso_utc(e.at), "actor": e.actor, "action": e.action, "target": e.target,
                       "result": e.result} for e in actions.scalars()]
            lacking, lacking_total = await _missing_permissions(session, connected_grants, listed)
            outbound = (await outbox_health(session)).to_dict(self.rt.clock.now()) \
                if self.rt.settings.events_enabled else None
        return HomeSummary(
            generated_at=self.rt.clock.now(),
            connections_by_status=counts,
            needs_reauth=[{"email": email, "since": iso_utc(since)} for email, since in waiting],
            needs_reauth_total=counts[ConnectionStatus.NEEDS_REAUTH],
            recent_actions=recent,
            missing_permissions=lacking,
            missing_permissions_total=lacking_total,
            outbound=outbound,
        )


async def _missing_permissions(session: AsyncSession, connected_grants: dict[str, int],
                               listed: int) -> tuple[list[dict[str, Any]], int]:
    """Connected users whose grant lacks something (errors first, newest first), and how many in all.

    ``connected_grants`` counts connected rows per stored grant. The verdict is judged once per
    distinct grant (a handful of scope combinations), never per row; only then are users fetched.
    """
    verdicts = {raw: verdict for raw in connected_grants
                if not (verdict := grant_verdict(parse_scopes(raw))).complete}
    total = sum(connected_grants[raw] for raw in verdicts)
    found: list[dict[str, Any]] = []
    for severity in (Severity.ERROR, Severity.WARNING):
        grants_of = [raw for raw, verdict in verdicts.items() if verdict.severity == severity]
        if not grants_of or len(found) >= listed:
            continue
        rows = await session.execute(
            select(User.email, StravaConnection.granted_scopes, StravaConnection.connected_at).join(StravaConnection)
            .where(StravaConnection.status == ConnectionStatus.CONNECTED, StravaConnection.granted_scopes.in_(grants_of))
            .order_by(StravaConnection.connected_at.desc()).limit(listed - len(found)))
        found += [{"email": email, "missing": list(verdicts[raw].missing_scopes), "severity": severity,
                   "since": iso_utc(since)} for email, raw, since in rows if raw in verdicts]
    return found, total
