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

from service.connections import history_log
from service.connections.refresh_events import announce
from service.connections.refresh_store import CONNECTED as _CONNECTED
from service.connections.refresh_store import store_grants
from service.connections.tokens import access_token
from service.core.backoff import exponential_backoff
from service.core.crypto import DecryptionError
from service.core.runtime import Runtime
from service.db.models import StravaConnection, User
from service.outbox import NEEDS_REAUTH
from service.strava import AppCredentialsRejected, GrantRevoked, RateLimited, StravaError, TokenGrant
from troubleshooting.vocabulary import ConnectionStatus, RefreshErrorKind

log = logging.getLogger(__name__)

# Long enough to cover a wait in the sweep's short queue plus a slow Strava call.
LEASE = timedelta(seconds=120)
FIRST_BACKOFF_S, MAX_BACKOFF_S = 60, 3600
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
    return exponential_backoff(failures, FIRST_BACKOFF_S, MAX_BACKOFF_S)


def _free_lease(now: datetime):  # noqa: ANN202 - SQL expression
    return or_(StravaConnection.refresh_lease_until.is_(None), StravaConnection.refresh_lease_until < now)


def _due(now: datetime, margin_s: int):  # noqa: ANN202
    return and_(
        StravaConnection.status == ConnectionStatus.CONNECTED,
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


@dataclass(frozen=True)
class _Leased:
    conn_id: int
    user_id: int
    email: str
    refresh_token_enc: str | None


async def _claim(rt: Runtime, conn_ids: list[int], force: bool, within_s: int | None = None) -> list[_Leased]:
    """Lease the given connections for one refresh each; only those still ours to refresh come back.
    Due means expiring within `within_s` seconds (default FITGLUE_REFRESH_MARGIN_S) and not backing off."""
    now = rt.clock.now()
    margin = rt.settings.refresh_margin_s if within_s is None else within_s
    conditions = [StravaConnection.id.in_(conn_ids), _free_lease(now)]
    conditions.append(StravaConnection.status == ConnectionStatus.CONNECTED if force else _due(now, margin))
    async with rt.write() as session:
        rows = (await session.execute(
            update(StravaConnection).where(*conditions).values(refresh_lease_until=now + LEASE)
            .returning(StravaConnection.id, StravaConnection.user_id, StravaConnection.refresh_token_enc))).all()
    if not rows:
        return []
    async with rt.sessions() as session:
        emails = dict((await session.execute(
            select(User.id, User.email).where(User.id.in_({row[1] for row in rows})))).all())
    return [_Leased(row[0], row[1], emails.get(row[1], ""), row[2]) for row in rows]


async def _describe(rt: Runtime, conn_id: int, error: str | None = None, kind: str | None = None) -> RefreshResult:
    async with rt.sessions() as session:
        row = (await session.execute(select(StravaConnection, User.email).join(User)
                                     .where(StravaConnection.id == conn_id))).one()
        conn, email = row
        return RefreshResult(email=email, status=conn.status, refreshed=False, expires_at=conn.expires_at,
                             error=error, error_kind=kind)


async def refresh_connection(rt: Runtime, conn_id: int, *, force: bool = False) -> RefreshResult:
    """Refresh one connection now (force) or only if still due. Never raises for Strava failures."""
    rt.require_strava()
    leased = await _claim(rt, [conn_id], force)
    if not leased:
        result = await _describe(rt, conn_id)
        if result.status != ConnectionStatus.CONNECTED:
            message = {ConnectionStatus.NEEDS_REAUTH.value: "the connection needs re-authorization by the user",
                       ConnectionStatus.REVOKED.value: "the athlete revoked FitGlue's access at Strava"}.get(
                result.status, "the user has not connected Strava")
            return RefreshResult(result.email, result.status, False, result.expires_at, message, result.status)
        if force:
            return RefreshResult(result.email, result.status, False, result.expires_at,
                                 "another refresh of this token is in progress", "busy")
        return result  # someone else refreshed it, or it is no longer due
    return await _refresh_leased(rt, leased[0])


async def refresh_if_expiring(rt: Runtime, conn_id: int, within_s: int) -> RefreshResult | None:
    """Refresh one connection if its token expires within `within_s` seconds, under the same lease as
    the sweep. None when this call did not take the lease: someone else (the sweep, another caller,
    another replica) is refreshing it, or it is not due (not connected, fresh enough, backing off)."""
    rt.require_strava()
    leased = await _claim(rt, [conn_id], force=False, within_s=within_s)
    return await _refresh_leased(rt, leased[0]) if leased else None


@dataclass(frozen=True)
class _CallOutcome:
    leased: _Leased
    grant: TokenGrant | None = None
    error: StravaError | None = None


async def _call_strava(rt: Runtime, leased: _Leased) -> _CallOutcome:
    strava = rt.require_strava()
    try:
        token = rt.cipher.decrypt(leased.refresh_token_enc) if leased.refresh_token_enc else None
    except DecryptionError:
        token = None
    try:
        if token is None:
            raise StravaError("the stored refresh token cannot be read (was FITGLUE_SECRET_KEY changed "
                              "without keeping the old key in FITGLUE_PREVIOUS_SECRET_KEYS?)")
        return _CallOutcome(leased, grant=await strava.refresh(token))
    except StravaError as exc:
        return _CallOutcome(leased, error=exc)


async def _settle(rt: Runtime, outcomes: list[_CallOutcome]) -> list[RefreshResult]:
    """Store what the calls brought back: all successes in one transaction, failures by kind."""
    now = rt.clock.now()
    results: list[RefreshResult] = []
    successes = [(o.leased, o.grant) for o in outcomes if o.grant is not None]
    if successes:  # refreshed only where still connected (service.connections.refresh_store)
        statuses = await store_grants(rt, [(leased.conn_id, leased.user_id, grant) for leased, grant in successes], now)
        for leased, grant in successes:
            status = statuses.get(leased.conn_id, ConnectionStatus.NOT_CONNECTED)
            results.append(RefreshResult(leased.email, status, status == ConnectionStatus.CONNECTED, grant.expires_at))
    for outcome in outcomes:
        error, leased = outcome.error, outcome.leased
        if error is None:
            continue
        if isinstance(error, GrantRevoked):
            results.append(await _record_failure(rt, leased, RefreshErrorKind.GRANT_DEAD, error.summary, grant_dead=True))
        elif isinstance(error, AppCredentialsRejected):
            await rt.alerts.alert("app_credentials_rejected",
                                  "Strava rejected FitGlue's client id/secret while refreshing a token")
            results.append(await _record_failure(rt, leased, RefreshErrorKind.APP_CREDENTIALS_REJECTED, error.summary,
                                                 retry_at=now + APP_REJECTED_RETRY))
        elif isinstance(error, RateLimited):
            results.append(await _record_failure(rt, leased, RefreshErrorKind.RATE_LIMITED, error.summary))
        else:
            results.append(await _record_failure(rt, leased, RefreshErrorKind.TRANSIENT, error.summary))
    return results


async def _refresh_leased(rt: Runtime, leased: _Leased) -> RefreshResult:
    return (await _settle(rt, [await _call_strava(rt, leased)]))[0]


async def _record_failure(rt: Runtime, leased: _Leased, kind: str, message: str, *,
                          grant_dead: bool = False, retry_at: datetime | None = None) -> RefreshResult:
    conn_id, user_id = leased.conn_id, leased.user_id
    now = rt.clock.now()
    values: dict = {"last_refresh_error_kind": kind, "last_refresh_error": message, "last_refresh_error_at": now,
                    "refresh_lease_until": None, "updated_at": now}
    if grant_dead:
        values.update(status=ConnectionStatus.NEEDS_REAUTH, status_changed_at=now, next_refresh_at=None,
                      status_reason="Strava no longer accepts the refresh token (access revoked or expired)",
                      access_token_enc=None, refresh_token_enc=None, expires_at=None)
        log.warning("user %s: Strava grant is gone, connection needs re-authorization", user_id)
    async with rt.write() as session:
        failures, before = await history_log.note_refresh_failure(session, conn_id, user_id, now, kind, message,
                                                                  values.get("status_reason"))
        if grant_dead:
            was_connected = [conn_id] if before == ConnectionStatus.CONNECTED else []
            await announce(session, rt, NEEDS_REAUTH, was_connected, now, status=ConnectionStatus.NEEDS_REAUTH)
        else:
            values.update(refresh_failures=failures + 1, next_refresh_at=retry_at or now + backoff_after(failures + 1))
            log.info("user %s: token refresh failed (%s), next try at %s", user_id, kind, values["next_refresh_at"])
        this = update(StravaConnection).where(StravaConnection.id == conn_id)
        back = (StravaConnection.status, StravaConnection.expires_at)
        row = (await session.execute(this.where(_CONNECTED).values(**values).returning(*back))).one_or_none() \
            or (await session.execute(this.values(refresh_lease_until=None).returning(*back))).one()  # ended meanwhile
    return RefreshResult(leased.email, row[0], False, row[1], message, kind)


async def sweep_due(rt: Runtime, batch: int = 1000, max_per_sweep: int = 200_000) -> list[RefreshResult]:
    """Refresh every connection due within the margin, `refresh_concurrency` Strava calls at a time.

    Three stages, so the Strava calls never wait on our database: a feeder leases a few
    connections at a time just ahead of the callers (a lease never waits long behind a slow
    Strava), callers keep `refresh_concurrency` calls in flight, and a settler stores results in
    small batches as they arrive. Memory stays flat at any size.
    """
    width = rt.settings.refresh_concurrency
    ready: asyncio.Queue[_Leased | None] = asyncio.Queue(maxsize=width)
    done: asyncio.Queue[_CallOutcome | None] = asyncio.Queue()
    results: list[RefreshResult] = []

    async def feed() -> None:
        seen: set[int] = set()
        try:
            while len(seen) < max_per_sweep:
                ids = [i for i in await due_connection_ids(rt, batch) if i not in seen]
                if not ids:
                    return
                seen.update(ids)
                for start in range(0, len(ids), width):
                    for leased in await _claim(rt, ids[start:start + width], force=False):
                        await ready.put(leased)
        finally:
            for _ in range(width):
                await ready.put(None)

    async def call() -> None:
        while (leased := await ready.get()) is not None:
            await done.put(await _call_strava(rt, leased))

    async def settle() -> None:
        finished = False
        while not finished:
            pending = [await done.get()]
            while not done.empty() and len(pending) < 200:
                pending.append(done.get_nowait())
            finished = None in pending
            outcomes = [o for o in pending if o is not None]
            if outcomes:
                results.extend(r for r in await _settle(rt, outcomes) if r.refreshed or r.failed)

    async def callers() -> None:
        try:
            await asyncio.gather(*(call() for _ in range(width)))
        finally:
            await done.put(None)

    await asyncio.gather(feed(), callers(), settle())
    return results


async def usable_access_token(rt: Runtime, conn_id: int) -> str | None:
    """An access token for an API call, refreshed first when it is due. None when the grant is gone."""
    async with rt.sessions() as session:
        conn = await session.get(StravaConnection, conn_id)
        if conn is None or conn.status != ConnectionStatus.CONNECTED:
            return None
        expires = conn.expires_at
    if expires is None or expires <= rt.clock.now() + timedelta(seconds=rt.settings.refresh_margin_s):
        await refresh_connection(rt, conn_id)
    async with rt.sessions() as session:
        conn = await session.get(StravaConnection, conn_id)
        if conn is None or conn.status != ConnectionStatus.CONNECTED:
            return None
        try:
            return access_token(conn, rt.cipher)
        except DecryptionError:
            return None
