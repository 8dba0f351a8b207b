"""Keeping access tokens fresh.

Each refresh runs under a short lease taken with a conditional UPDATE, so two sweeps — in one
process or on several replicas, SQLite or PostgreSQL — never refresh one token twice. Only
Strava's 400 RefreshToken/refresh_token/invalid ends a grant; rejected app credentials are an
operator problem; timeouts, 5xx and 429 are retried with backoff and change no status.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select, update

from . import vocab
from .crypto import DecryptionError
from .db.models import StravaConnection, User
from .runtime import Runtime
from .strava import AppCredentialsRejected, GrantRevoked, RateLimited, StravaError
from .tokens import access_token, drop_tokens, refresh_token, store_grant

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=60)
MAX_BACKOFF_S = 3600
APP_REJECTED_RETRY = timedelta(minutes=15)


@dataclass(frozen=True)
class RefreshResult:
    email: str
    status: str
    refreshed: bool
    expires_at: datetime | None
    error: str | None = None
    error_kind: str | None = None

    @property
    def failed(self) -> bool:
        return self.error is not None


def backoff_after(failures: int) -> timedelta:
    """1, 2, 4 … minutes, capped at an hour."""
    return timedelta(seconds=min(60 * 2 ** max(failures - 1, 0), MAX_BACKOFF_S))


def _free_lease(now: datetime):  # noqa: ANN202 - SQL expression
    return or_(StravaConnection.refresh_lease_until.is_(None), StravaConnection.refresh_lease_until < now)


def _due(now: datetime, margin_s: int):  # noqa: ANN202
    return and_(
        StravaConnection.status == vocab.CONNECTED,
        StravaConnection.expires_at <= now + timedelta(seconds=margin_s),
        or_(StravaConnection.next_refresh_at.is_(None), StravaConnection.next_refresh_at <= now),
    )


async def due_connection_ids(rt: Runtime, limit: int = 1000) -> list[int]:
    now = rt.clock.now()
    async with rt.sessions() as session:
        rows = await session.execute(
            select(StravaConnection.id).where(_due(now, rt.settings.refresh_margin_s), _free_lease(now))
            .order_by(StravaConnection.expires_at).limit(limit))
        return [row[0] for row in rows]


async def _take_lease(rt: Runtime, conn_id: int, force: bool) -> bool:
    now = rt.clock.now()
    conditions = [StravaConnection.id == conn_id, _free_lease(now)]
    conditions.append(StravaConnection.status == vocab.CONNECTED if force else _due(now, rt.settings.refresh_margin_s))
    async with rt.sessions() as session, session.begin():
        result = await session.execute(update(StravaConnection).where(*conditions)
                                       .values(refresh_lease_until=now + LEASE))
        return result.rowcount == 1  # type: ignore[attr-defined]


async def _describe(rt: Runtime, conn_id: int, error: str | None = None, kind: str | None = None) -> RefreshResult:
    async with rt.sessions() as session:
        row = (await session.execute(select(StravaConnection, User.email).join(User)
                                     .where(StravaConnection.id == conn_id))).one()
        conn, email = row
        return RefreshResult(email=email, status=conn.status, refreshed=False, expires_at=conn.expires_at,
                             error=error, error_kind=kind)


async def refresh_connection(rt: Runtime, conn_id: int, *, force: bool = False) -> RefreshResult:
    """Refresh one connection now (force) or only if still due. Never raises for Strava failures."""
    strava = rt.require_strava()
    if not await _take_lease(rt, conn_id, force):
        result = await _describe(rt, conn_id)
        if result.status != vocab.CONNECTED:
            message = {vocab.NEEDS_REAUTH: "the connection needs re-authorization by the user",
                       vocab.REVOKED: "the athlete revoked FitGlue's access at Strava"}.get(
                result.status, "the user has not connected Strava")
            return RefreshResult(result.email, result.status, False, result.expires_at, message, result.status)
        if force:
            return RefreshResult(result.email, result.status, False, result.expires_at,
                                 "another refresh of this token is in progress", "busy")
        return result  # someone else refreshed it, or it is no longer due

    async with rt.sessions() as session:
        conn = await session.get(StravaConnection, conn_id)
        assert conn is not None
        try:
            token = refresh_token(conn, rt.cipher)
        except DecryptionError:
            token = None
    now = rt.clock.now()
    try:
        if token is None:
            raise StravaError("the stored refresh token cannot be read (was FITGLUE_SECRET_KEY changed "
                              "without keeping the old key in FITGLUE_PREVIOUS_SECRET_KEYS?)")
        grant = await strava.refresh(token)
    except GrantRevoked as exc:
        return await _record_failure(rt, conn_id, vocab.ERR_GRANT_DEAD, exc.summary, grant_dead=True)
    except AppCredentialsRejected as exc:
        await rt.alerts.alert("app_credentials_rejected",
                              "Strava rejected FitGlue's client id/secret while refreshing a token")
        return await _record_failure(rt, conn_id, vocab.ERR_APP_REJECTED, exc.summary,
                                     retry_at=now + APP_REJECTED_RETRY)
    except RateLimited as exc:
        return await _record_failure(rt, conn_id, vocab.ERR_RATE_LIMITED, exc.summary)
    except StravaError as exc:
        return await _record_failure(rt, conn_id, vocab.ERR_TRANSIENT, exc.summary)

    async with rt.sessions() as session, session.begin():
        conn = await session.get(StravaConnection, conn_id)
        assert conn is not None
        # The rotated refresh token is stored in the same transaction that releases the lease.
        store_grant(conn, grant, rt.cipher)
        conn.last_refresh_at = rt.clock.now()
        conn.refresh_failures = 0
        conn.last_refresh_error = conn.last_refresh_error_kind = None
        conn.next_refresh_at = None
        conn.refresh_lease_until = None
        conn.updated_at = rt.clock.now()
        user = await session.get(User, conn.user_id)
        assert user is not None
        return RefreshResult(user.email, conn.status, True, conn.expires_at)


async def _record_failure(rt: Runtime, conn_id: int, kind: str, message: str, *, grant_dead: bool = False,
                          retry_at: datetime | None = None) -> RefreshResult:
    now = rt.clock.now()
    async with rt.sessions() as session, session.begin():
        conn = await session.get(StravaConnection, conn_id)
        assert conn is not None
        user = await session.get(User, conn.user_id)
        assert user is not None
        conn.last_refresh_error_kind = kind
        conn.last_refresh_error = message
        conn.last_refresh_error_at = now
        conn.refresh_lease_until = None
        conn.updated_at = now
        if grant_dead:
            conn.status = vocab.NEEDS_REAUTH
            conn.status_reason = "Strava no longer accepts the refresh token (access revoked or expired)"
            conn.status_changed_at = now
            conn.next_refresh_at = None
            drop_tokens(conn)
            log.warning("user %s: Strava grant is gone, connection needs re-authorization", conn.user_id)
        else:
            conn.refresh_failures = (conn.refresh_failures or 0) + 1
            conn.next_refresh_at = retry_at or now + backoff_after(conn.refresh_failures)
            log.info("user %s: token refresh failed (%s), next try at %s", conn.user_id, kind, conn.next_refresh_at)
        return RefreshResult(user.email, conn.status, False, conn.expires_at, message, kind)


async def sweep_due(rt: Runtime) -> list[RefreshResult]:
    """Refresh every connection due within the margin, a bounded number at a time."""
    ids = await due_connection_ids(rt)
    if not ids:
        return []
    limit = asyncio.Semaphore(rt.settings.refresh_concurrency)

    async def one(conn_id: int) -> RefreshResult | None:
        async with limit:
            result = await refresh_connection(rt, conn_id)
            return result if (result.refreshed or result.failed) else None

    results = await asyncio.gather(*(one(i) for i in ids))
    return [r for r in results if r is not None]


async def usable_access_token(rt: Runtime, conn_id: int) -> str | None:
    """An access token for an API call, refreshed first when it is due. None when the grant is gone."""
    async with rt.sessions() as session:
        conn = await session.get(StravaConnection, conn_id)
        if conn is None or conn.status != vocab.CONNECTED:
            return None
        expires = conn.expires_at
    if expires is None or expires <= rt.clock.now() + timedelta(seconds=rt.settings.refresh_margin_s):
        await refresh_connection(rt, conn_id)
    async with rt.sessions() as session:
        conn = await session.get(StravaConnection, conn_id)
        if conn is None or conn.status != vocab.CONNECTED:
            return None
        try:
            return access_token(conn, rt.cipher)
        except DecryptionError:
            return None
