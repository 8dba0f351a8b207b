"""A valid access token for one athlete, refreshed on demand: what FitGlue's other services ask for.

`valid_access_token(rt, reader, who, min_valid_s)` returns the stored token when it stays valid for at least
`min_valid_s` seconds; otherwise it refreshes it first, under the SAME lease as the refresh sweep
(`refresh.refresh_if_expiring`: a conditional UPDATE of `refresh_lease_until`), so a sweep, any
number of callers and any number of replicas cause one Strava refresh between them:

- callers in one process for one connection share one attempt (`RefreshFlights`) and then each
  reads the row again;
- a caller that finds the lease taken elsewhere (the sweep, another replica) looks at the row every
  FITGLUE_TOKEN_REFRESH_POLL_MS until the lease is released, for at most
  FITGLUE_TOKEN_REFRESH_WAIT_S, and then reads the refreshed token.

A connection backing off after a failed refresh (`next_refresh_at` in the future) is not refreshed
again before its time: the caller hears when to retry instead, so a failing Strava is not hammered
by every caller. Expiry is judged on the injected clock; the waits are real time.

Failures raise `TokenUnavailable` with a `kind` from a fixed vocabulary; tokens never appear in one.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from service.connections.refresh import refresh_if_expiring
from service.connections.token_reads import ConnectionView, TokenReader
from service.core.crypto import DecryptionError
from service.core.inputs import Who
from service.core.runtime import Runtime
from troubleshooting.permissions import parse_scopes
from troubleshooting.vocabulary import ConnectionStatus, RefreshErrorKind

# Kinds of TokenUnavailable besides the connection statuses (not_connected, needs_reauth, revoked).
STRAVA_UNAVAILABLE = "strava_unavailable"
RATE_LIMITED = "rate_limited"
APP_REJECTED = "strava_app_misconfigured"
UNREADABLE = "configuration"

_STATUS_MESSAGES: dict[str, str] = {
    ConnectionStatus.NOT_CONNECTED: "this user has not connected Strava (or was disconnected)",
    ConnectionStatus.NEEDS_REAUTH: "Strava no longer accepts this user's grant; the user must connect again",
    ConnectionStatus.REVOKED: "the athlete revoked FitGlue's access at Strava; the user must connect again",
}
_FAILURE_KINDS: dict[str, tuple[str, str]] = {
    RefreshErrorKind.RATE_LIMITED: (RATE_LIMITED,
                                    "Strava's rate limit is used up; the token could not be refreshed"),
    RefreshErrorKind.APP_CREDENTIALS_REJECTED: (
        APP_REJECTED, "Strava rejected FitGlue's own app credentials while refreshing; "
                      "an operator must fix STRAVA_CLIENT_ID/STRAVA_CLIENT_SECRET"),
}
_SHORTLY = timedelta(seconds=10)
_UNAVAILABLE = (STRAVA_UNAVAILABLE, "Strava did not refresh the token (it failed or did not answer in time)")


class TokenUnavailable(Exception):
    """No token valid for long enough can be handed out now.

    `kind`: not_connected, needs_reauth, revoked (the connection's status, also in `status`), or
    strava_unavailable, rate_limited, strava_app_misconfigured, configuration (try again at `retry_at`).
    """

    def __init__(self, kind: str, message: str, status: str, retry_at: datetime | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.status = status
        self.retry_at = retry_at


@dataclass(frozen=True)
class IssuedToken:
    """What the caller gets. `expires_at` is UTC; the token itself is kept out of repr (and so logs)."""

    email: str
    athlete_id: int
    access_token: str = field(repr=False)
    expires_at: datetime
    granted_scopes: tuple[str, ...]
    refreshed: bool


def _valid_for(rt: Runtime, row: ConnectionView, min_valid_s: int) -> bool:
    return (row.status == ConnectionStatus.CONNECTED and row.expires_at is not None
            and row.expires_at >= rt.clock.now() + timedelta(seconds=min_valid_s))


def _issued(rt: Runtime, row: ConnectionView, refreshed: bool) -> IssuedToken:
    try:
        token = rt.cipher.decrypt(row.access_token_enc) if row.access_token_enc else None
    except DecryptionError:
        token = None
    if token is None or row.athlete_id is None or row.expires_at is None:
        raise TokenUnavailable(UNREADABLE, "the stored access token cannot be read (was FITGLUE_SECRET_KEY "
                               "changed without keeping the old key in FITGLUE_PREVIOUS_SECRET_KEYS?)",
                               row.status, rt.clock.now() + timedelta(minutes=5))
    scopes = tuple(sorted(parse_scopes(row.granted_scopes or "")))
    return IssuedToken(row.email, row.athlete_id, token, row.expires_at, scopes, refreshed)


def _refusal(rt: Runtime, row: ConnectionView) -> TokenUnavailable:
    """Why `row` has no token valid for long enough, after any refresh there was to make."""
    if row.status != ConnectionStatus.CONNECTED or row.conn_id is None:
        message = _STATUS_MESSAGES.get(row.status, _STATUS_MESSAGES[ConnectionStatus.NOT_CONNECTED])
        return TokenUnavailable(row.status, message, row.status)
    now = rt.clock.now()
    if row.next_refresh_at is not None and row.next_refresh_at > now:  # the last refresh failed
        kind, message = _FAILURE_KINDS.get(row.error_kind or "", _UNAVAILABLE)
        return TokenUnavailable(kind, message, row.status, row.next_refresh_at)
    if row.refresh_lease_until is not None and row.refresh_lease_until > now:
        # Still leased elsewhere after the whole wait: that refresh is slow, or its holder died.
        return TokenUnavailable(STRAVA_UNAVAILABLE, "another refresh of this token is still running; "
                                "try again shortly", row.status, min(row.refresh_lease_until, now + _SHORTLY))
    return TokenUnavailable(*_UNAVAILABLE, row.status, now + _SHORTLY)


class RefreshFlights:
    """This runtime's refresh attempts in progress, by connection id: callers join, not repeat, them."""

    def __init__(self, rt: Runtime) -> None:
        self.running: dict[int, asyncio.Task[None]] = {}


async def _refresh_or_wait(rt: Runtime, reader: TokenReader, conn_id: int, min_valid_s: int) -> None:
    """Refresh under the lease, or wait for whoever holds it; return when nothing is left to wait for."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + rt.settings.token_refresh_wait_s
    while True:
        if await refresh_if_expiring(rt, conn_id, min_valid_s) is not None:
            return  # we refreshed (or recorded why Strava would not)
        row = await reader.read(conn_id)
        lease_taken = row is not None and row.refresh_lease_until is not None \
            and row.refresh_lease_until > rt.clock.now()
        if row is None or _valid_for(rt, row, min_valid_s) or not lease_taken or loop.time() >= deadline:
            return  # refreshed elsewhere, no longer connected, backing off, or waited long enough
        await asyncio.sleep(rt.settings.token_refresh_poll_ms / 1000)


async def _join_or_refresh(rt: Runtime, reader: TokenReader, conn_id: int, min_valid_s: int) -> None:
    """Join this connection's attempt in flight, or start one. The attempt is a task of its own that
    callers only wait for (shielded): a caller that goes away never cuts a refresh short between
    Strava rotating the refresh token and our storing it."""
    flights = rt.part(RefreshFlights).running
    flight = flights.get(conn_id)
    if flight is None:
        flight = flights[conn_id] = asyncio.ensure_future(_refresh_or_wait(rt, reader, conn_id, min_valid_s))

        def landed(task: asyncio.Task[None]) -> None:
            flights.pop(conn_id, None)
            if not task.cancelled():
                task.exception()  # retrieved: the waiting callers raise it, and none may be left

        flight.add_done_callback(landed)
        rt.keep(flight)  # a refresh nobody waits for any more still ends before the runtime closes
    await asyncio.shield(flight)


async def valid_access_token(rt: Runtime, reader: TokenReader, who: Who,
                             min_valid_s: int) -> IssuedToken | None:
    """An access token of `who` valid for at least `min_valid_s` seconds (0 to 3600), refreshed first
    when needed. None when no FitGlue user matches `who`. Raises TokenUnavailable."""
    row = await reader.read(who)
    if row is None:
        return None
    if _valid_for(rt, row, min_valid_s):
        return _issued(rt, row, refreshed=False)
    if row.status != ConnectionStatus.CONNECTED or row.conn_id is None:
        raise _refusal(rt, row)
    rt.require_strava()
    # Twice at most: a flight we joined may have been for a caller content with less time left.
    for _ in range(2):
        await _join_or_refresh(rt, reader, row.conn_id, min_valid_s)
        fresh = await reader.read(row.conn_id)
        if fresh is None:  # erased meanwhile
            return None
        if _valid_for(rt, fresh, min_valid_s):
            return _issued(rt, fresh, refreshed=True)
        row = fresh
        backing_off = row.next_refresh_at is not None and row.next_refresh_at > rt.clock.now()
        if row.status != ConnectionStatus.CONNECTED or backing_off:
            break
    raise _refusal(rt, row)
