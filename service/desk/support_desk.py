"""SupportDesk: the one API the Slack bot, the CLI and the admin API share.

Each operation that changes something writes the audit log with the actor (`cli:<os user>`,
`slack:<user id>`, `admin-api`), the target, the result and the duration.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

import troubleshooting
from service.connections import history_log
from service.connections.erasure import (
    ForgetResult,
    deauthorize_quietly,
    delete_strava_data,
    erase_user,
    erasure_label,
)
from service.connections.links import issue_link
from service.connections.refresh import RefreshResult, refresh_connection, sweep_due
from service.connections.tokens import access_token, drop_tokens, reencrypt_all_tokens
from service.connections.users import find_user, get_or_create_user, normalize_email
from service.core.audit_log import add_entry_now, audited, list_entries
from service.core.clock import iso_utc
from service.core.crypto import DecryptionError
from service.core.runtime import Runtime
from service.db.models import StravaConnection, User
from service.desk.affected import AffectedOps
from service.desk.api_models import AuditEntryBody
from service.desk.boundary import raises_only_support_error
from service.desk.bulk_links import BulkLinksOps
from service.desk.dashboard import HomeOps
from service.desk.error_table import SupportError
from service.desk.events_ops import EventsOps
from service.desk.history import HistoryOps
from service.desk.observations import BadWho, gather_facts, thresholds_from
from service.desk.webhook_ops import WebhookQueueOps
from service.outbox import DISCONNECTED, connection_data, write_event
from service.strava import StravaError
from service.subscription.cache import subscription_cache
from troubleshooting.vocabulary import ConnectionStatus

__all__ = ["DisconnectResult", "KeyRotation", "LinkIssued", "SupportDesk", "SupportError"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LinkIssued:
    email: str
    url: str
    expires_at: datetime
    created_user: bool

    def to_dict(self) -> dict:
        return {"email": self.email, "url": self.url, "expires_at": iso_utc(self.expires_at),
                "created_user": self.created_user}


@dataclass(frozen=True)
class KeyRotation:
    rotated: int  # connections whose tokens are now encrypted under the current key
    unreadable: int  # connections whose tokens no configured key can read (they need re-authorization)


@dataclass(frozen=True)
class DisconnectResult:
    email: str
    status: str
    deauthorized: bool
    warning: str | None


@raises_only_support_error  # failures leave the desk as SupportError only (service/desk/boundary.py)
class SupportDesk:
    """The desk's own operations (diagnose, Connect links, refresh, disconnect, forget, key rotation,
    audit), and the small services it is composed of, which the adapters call directly; each service
    class carries the same error boundary, so everything reached through a desk raises only SupportError:

    - `webhooks`: the push subscription, the rate-limit budget, the retry queue (`webhook_ops.py`);
    - `home`: the App Home dashboard summary (`dashboard.py`);
    - `events`: the outbound events (`events_ops.py`);
    - `history`: one user's history (`history.py`);
    - `affected`: who has a finding (`affected.py`);
    - `bulk_links`: Connect links for everyone with a finding (`bulk_links.py`).
    """

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.webhooks = WebhookQueueOps(rt)
        self.home = HomeOps(rt)
        self.events = EventsOps(rt)
        self.history = HistoryOps(rt)
        self.affected = AffectedOps(rt)
        self.bulk_links = BulkLinksOps(rt, self.affected, self.issue_connect_link)

    # ---- the desk's own operations -------------------------------------------------------------

    async def diagnose(self, who: str) -> troubleshooting.Diagnosis:
        """The diagnosis of one user's Strava connection; `who` is an e-mail or a Strava athlete id.

        Reads only: the database plus one live look at the push subscription (cached for a minute,
        shared by every desk of this runtime). An unknown user is a diagnosis, not an error.
        """
        try:
            facts = await gather_facts(self.rt, who)
        except BadWho as exc:
            raise SupportError("bad_argument", str(exc)) from None
        return troubleshooting.diagnose(facts, thresholds_from(self.rt.settings))

    def forget_subscription_look(self) -> None:
        """Drop the cached live subscription look (call after changing the subscription)."""
        subscription_cache(self.rt).invalidate()

    def _valid_email(self, email: str) -> str:
        try:
            return normalize_email(email)
        except ValueError as exc:
            raise SupportError("bad_email", str(exc)) from None

    async def issue_connect_link(self, email: str, actor: str) -> LinkIssued:
        email = self._valid_email(email)
        rt = self.rt
        async with (audited(rt.sessions, rt.clock, actor, "issue_connect_link", email),
                    rt.sessions() as session, session.begin()):
            user, created = await get_or_create_user(session, email, rt.clock.now())
            link = await issue_link(session, rt.link_signer, rt.clock, user, actor, rt.settings.link_ttl_s,
                                    rt.settings.public_url)
            return LinkIssued(user.email, link.url, link.expires_at, created)

    async def _unknown(self, email: str) -> bool:
        async with self.rt.sessions() as session:
            return await find_user(session, email) is None

    async def _connection_id(self, email: str) -> tuple[User, StravaConnection | None]:
        async with self.rt.sessions() as session:
            user = await find_user(session, email)
            if user is None:
                raise SupportError("unknown_user", f"no FitGlue user with e-mail {email}")
            return user, user.connection

    async def refresh_now(self, email: str, actor: str) -> RefreshResult:
        email = self._valid_email(email)
        rt = self.rt
        rt.require_strava()
        async with audited(rt.sessions, rt.clock, actor, "refresh_token", email) as outcome:
            user, conn = await self._connection_id(email)
            if conn is None or conn.status == ConnectionStatus.NOT_CONNECTED:
                outcome.result = "refused"
                return RefreshResult(user.email, ConnectionStatus.NOT_CONNECTED, False, None,
                                     "the user has not connected Strava", ConnectionStatus.NOT_CONNECTED)
            result = await refresh_connection(rt, conn.id, force=True)
            outcome.result = "ok" if result.refreshed else (result.error_kind or "failed")
            outcome.detail = result.error
            return result

    async def refresh_due(self, actor: str) -> list[RefreshResult]:
        rt = self.rt
        rt.require_strava()
        async with audited(rt.sessions, rt.clock, actor, "refresh_due", None) as outcome:
            results = await sweep_due(rt)
            outcome.detail = f"{sum(r.refreshed for r in results)} refreshed, {sum(r.failed for r in results)} failed"
            return results

    async def disconnect(self, email: str, actor: str) -> DisconnectResult:
        """Deauthorize at Strava and forget the tokens here — the local part happens even when Strava fails."""
        email = self._valid_email(email)
        rt = self.rt
        async with audited(rt.sessions, rt.clock, actor, "disconnect", email) as outcome:
            if await self._unknown(email):
                # Like `diagnose` of a stranger: an answer, not a failure (exit 0, admin 200).
                outcome.result = "nothing_to_do"
                return DisconnectResult(email, ConnectionStatus.UNKNOWN_USER, False,
                                        f"there is no FitGlue user with e-mail {email}, so nothing was disconnected")
            user, conn = await self._connection_id(email)
            if conn is None or conn.status == ConnectionStatus.NOT_CONNECTED:
                outcome.result = "nothing_to_do"
                return DisconnectResult(user.email, ConnectionStatus.NOT_CONNECTED, False,
                                        "nothing to disconnect: this user has no Strava connection")
            warning, deauthorized = None, False
            try:
                token = access_token(conn, rt.cipher)
                unreadable = False
            except DecryptionError:
                token, unreadable = None, True
            if unreadable:
                warning = "the stored tokens could not be decrypted, so Strava was not asked to deauthorize; " \
                          "the connection was removed here"
            elif not token:
                warning = f"no Strava tokens were stored (status {conn.status}), so there was nothing to " \
                          "deauthorize at Strava; the connection was removed here"
            elif rt.strava is not None:
                try:
                    await rt.strava.deauthorize(token)
                    deauthorized = True
                except StravaError as exc:
                    warning = f"Strava did not confirm the deauthorization ({exc.summary}); " \
                              "the tokens were forgotten here anyway"
            else:
                warning = "Strava is not configured, so FitGlue could not deauthorize there; tokens forgotten here"
            now = rt.clock.now()
            async with rt.sessions() as session, session.begin():
                row = (await session.execute(select(StravaConnection).where(StravaConnection.id == conn.id))
                       ).scalar_one()
                drop_tokens(row)
                # The grant ends here: Strava's API Agreement wants its data gone with it.
                await delete_strava_data(session, [row.athlete_id] if row.athlete_id else [], [row.user_id])
                await write_event(session, rt.settings, now, DISCONNECTED,
                                  {**connection_data(user.email, row.athlete_id, ConnectionStatus.NOT_CONNECTED, row.granted_scopes),
                                   "disconnected_by": actor}, athlete_id=row.athlete_id, user_id=row.user_id)
                # Free the athlete id, so the athlete can later connect to another FitGlue account.
                row.athlete_id = None
                note_disconnect(session, row, now, actor)
                row.status = ConnectionStatus.NOT_CONNECTED
                row.status_reason = f"disconnected by {actor}"
                row.status_changed_at = now
                row.next_refresh_at = None
                row.updated_at = now
            outcome.result = "ok" if warning is None else "ok_with_warning"
            outcome.detail = warning
            return DisconnectResult(user.email, ConnectionStatus.NOT_CONNECTED, deauthorized, warning)

    async def rotate_keys(self, actor: str) -> KeyRotation:
        """Re-encrypt every stored token under the current FITGLUE_SECRET_KEY (the second step of a
        key rotation, README "Rotating FITGLUE_SECRET_KEY"); audited as `rotate_keys`."""
        async with audited(self.rt.sessions, self.rt.clock, actor, "rotate_keys", None) as outcome:
            rotated, unreadable = await reencrypt_all_tokens(self.rt)
            outcome.detail = f"{rotated} rotated, {unreadable} unreadable"
        return KeyRotation(rotated, unreadable)

    async def forget(self, email: str, actor: str) -> ForgetResult:
        """Erase a user: deauthorize at Strava (tokens go even when that fails), delete their data,
        keep one audit entry that names them only by an anonymous label."""
        email = self._valid_email(email)
        rt = self.rt
        if await self._unknown(email):
            # Nothing to erase, and no erasure label minted for a stranger: the audit entry names nobody.
            async with audited(rt.sessions, rt.clock, actor, "forget", None) as outcome:
                outcome.result = "nothing_to_do"
            return ForgetResult(None, False, f"there is no FitGlue user with e-mail {email}, so nothing was erased")
        label = await erasure_label(rt, email)
        async with audited(rt.sessions, rt.clock, actor, "forget", label) as outcome:
            user, conn = await self._connection_id(email)
            deauthorized, warning = await deauthorize_quietly(rt, conn)
            deleted = await erase_user(rt, user.id, user.email, label)
            outcome.result = "ok" if warning is None else "ok_with_warning"
            counts = ", ".join(f"{table} {n}" for table, n in deleted.items() if n)
            outcome.detail = f"deleted: {counts or 'nothing'}" + (f"; warning: {warning}" if warning else "")
            return ForgetResult(label, deauthorized, warning, deleted)

    async def record_request(self, actor: str, action: str, target: str | None, result: str,
                             detail: str | None = None) -> None:
        """Write one audit entry for a request that reached an adapter (e.g. a Slack command, allowed or
        refused), in its own transaction."""
        await add_entry_now(self.rt.sessions, self.rt.clock, actor, action, target, result, detail)

    async def audit_entries(self, limit: int = 50, *, before_id: int | None = None, actor: str | None = None,
                            action: str | None = None, target: str | None = None) -> list[dict]:
        """The audit log, newest first, as JSON-ready objects (`GET /admin/api/audit`)."""
        entries = await list_entries(self.rt.sessions, limit, before_id=before_id, actor=actor, action=action,
                                     target=target)
        return [AuditEntryBody.of(e).to_json() for e in entries]


def note_disconnect(session: AsyncSession, conn: StravaConnection, now: datetime, actor: str) -> None:
    """The history entry of a disconnect, in its transaction (before the row's status changes)."""
    history_log.record_status_change(session, conn.user_id, now, conn.status, ConnectionStatus.NOT_CONNECTED,
                                     f"disconnected by {actor}")
