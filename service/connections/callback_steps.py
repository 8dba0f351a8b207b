"""The steps of the OAuth callback, in the order ``connect_flow.complete_connect`` takes them.

1. ``claim_attempt``: the state names a pending attempt and this browser holds its cookie; claim it,
   so that only one callback per state ever proceeds (its own transaction).
2. ``check_in_time`` and ``code_from_strava``: the attempt is not stale, and Strava sent a code
   rather than an error.
3. ``exchange_code``: Strava turns the code into a grant that names the athlete.
4. ``linked_to_another_user`` / ``refuse_athlete_conflict``, ``store_connection`` and
   ``record_connected``: the grant is stored, or refused, in one transaction with the attempt's outcome.

A step that ends the attempt early raises ``Refused``; ``record_refusal`` writes it down and says
so to the browser that started the attempt.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from service.connections import history_log
from service.connections.callback_outcomes import (
    OUTCOME_STATUS,
    CallbackResult,
    connection_now,
    retry_url_for,
    settled_result,
    unproven_browser,
)
from service.connections.tokens import store_grant
from service.connections.users import connection_for
from service.core.crypto import constant_time_equals, digest
from service.core.runtime import Runtime
from service.db.models import ConnectLink, OAuthAttempt, StravaConnection, User
from service.outbox import CONNECTED, PERMISSIONS_CHANGED, connection_data, write_event
from service.queue.catch_up import queue_catch_up_for_connect
from service.strava import AppCredentialsRejected, StravaClient, StravaError, TokenGrant
from troubleshooting.permissions import GrantVerdict
from troubleshooting.vocabulary import AttemptOutcome, ConnectionStatus


@dataclass(frozen=True)
class ClaimedAttempt:
    """A pending attempt this callback claimed: from here on, only this callback settles it."""

    attempt_id: int
    user_id: int
    email: str | None
    link: ConnectLink | None
    # When the callback claimed it: the attempt's finished_at, and the time of every write that follows.
    claimed_at: datetime
    expired: bool
    # The Connect link again while it can still be used (only the browser that started the attempt sees it).
    retry_url: str | None


class Refused(Exception):
    """The attempt ends without a connection: ``outcome`` is a ``AttemptOutcome``, ``reason`` a
    sentence for the attempt row and the result page."""

    def __init__(self, outcome: str, reason: str) -> None:
        super().__init__(reason)
        self.outcome, self.reason = outcome, reason


async def claim_attempt(rt: Runtime, state: str, browser_secret: str | None) -> ClaimedAttempt | CallbackResult:
    """Check the state and the browser, and claim the attempt.

    A CallbackResult when there is nothing to do: no or unknown state, a browser without the
    attempt's cookie, or an attempt already claimed (a reload sees it settled).
    """
    if not state:
        return CallbackResult(400, AttemptOutcome.STATE_INVALID, reason="the callback carried no state")
    now = rt.clock.now()
    async with rt.sessions() as session, session.begin():
        attempt = (await session.execute(select(OAuthAttempt).where(OAuthAttempt.state_hash == digest(state)))
                   ).scalar_one_or_none()
        if attempt is None:
            return CallbackResult(400, AttemptOutcome.STATE_INVALID, reason="unknown sign-in attempt")
        if not constant_time_equals(digest(browser_secret or ""), attempt.browser_hash):
            return unproven_browser(attempt)
        user = await session.get(User, attempt.user_id)
        link = await session.get(ConnectLink, attempt.link_id) if attempt.link_id else None
        email = user.email if user else None
        claimed = await session.execute(
            update(OAuthAttempt).where(OAuthAttempt.id == attempt.id, OAuthAttempt.finished_at.is_(None))
            .values(finished_at=now))
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            await session.refresh(attempt)
            return await settled_result(rt, session, attempt, email, link)
    return ClaimedAttempt(attempt_id=attempt.id, user_id=attempt.user_id, email=email, link=link, claimed_at=now,
                          expired=attempt.expires_at <= now, retry_url=retry_url_for(rt, link))


def check_in_time(claimed: ClaimedAttempt) -> None:
    """Raise Refused when the user took longer than the state lives."""
    if claimed.expired:
        raise Refused(AttemptOutcome.STATE_INVALID, "the sign-in took longer than 10 minutes")


def code_from_strava(params: Mapping[str, str]) -> str:
    """The authorization code Strava sent back; Refused when it sent an error (or nothing) instead."""
    if params.get("error"):
        error = params["error"][:100]
        if error == "access_denied":
            raise Refused(AttemptOutcome.DENIED, "the permission request was declined at Strava")
        raise Refused(AttemptOutcome.EXCHANGE_FAILED, f"Strava reported {error}")
    code = params.get("code") or ""
    if not code:
        raise Refused(AttemptOutcome.EXCHANGE_FAILED, "Strava sent no authorization code")
    return code


async def exchange_code(strava: StravaClient, code: str) -> tuple[TokenGrant, int]:
    """Strava's grant for ``code`` and the athlete id it names. Refused when Strava says no."""
    try:
        grant = await strava.exchange_code(code)
    except AppCredentialsRejected as exc:
        raise Refused(AttemptOutcome.APP_REJECTED, exc.summary) from exc
    except StravaError as exc:
        raise Refused(AttemptOutcome.EXCHANGE_FAILED, exc.summary) from exc
    athlete_id = int((grant.athlete or {}).get("id") or 0) or None
    if athlete_id is None:
        raise Refused(AttemptOutcome.EXCHANGE_FAILED, "Strava's answer did not say which athlete signed in")
    return grant, athlete_id


async def record_refusal(rt: Runtime, claimed: ClaimedAttempt, refused: Refused) -> CallbackResult:
    """Record why the attempt did not connect and say so to the browser that started it."""
    async with rt.sessions() as session, session.begin():
        await session.execute(update(OAuthAttempt).where(OAuthAttempt.id == claimed.attempt_id)
                              .values(outcome=refused.outcome, reason=refused.reason))
        # Another tab may have connected meanwhile: the page says so rather than only "failed".
        current = await connection_now(session, claimed.user_id, refused.outcome, None, None)
    app_rejected = refused.outcome == AttemptOutcome.APP_REJECTED
    result = CallbackResult(OUTCOME_STATUS[refused.outcome], refused.outcome, email=claimed.email,
                            # Our own app is the problem, not the user: trying again does not help.
                            retry_url=None if app_rejected else claimed.retry_url, reason=refused.reason,
                            proven_browser=True, current=current)
    if app_rejected:
        await rt.alerts.alert("app_credentials_rejected", "Strava rejected FitGlue's client credentials "
                              "during a code exchange")
    return result


async def linked_to_another_user(session: AsyncSession, athlete_id: int, user_id: int) -> bool:
    """Whether this Strava athlete already belongs to a FitGlue user other than ``user_id``."""
    other = (await session.execute(select(StravaConnection).where(
        StravaConnection.athlete_id == athlete_id, StravaConnection.user_id != user_id))).scalar_one_or_none()
    return other is not None


async def refuse_athlete_conflict(session: AsyncSession, claimed: ClaimedAttempt, athlete_id: int,
                                  granted: frozenset[str], name: str | None = None) -> CallbackResult:
    """Record the refusal of an athlete linked to another user; the new tokens are simply discarded.

    Deauthorizing them instead would also revoke the grant of the FitGlue user this athlete
    already belongs to.
    """
    reason = f"Strava athlete {athlete_id} is already connected to another FitGlue account"
    await session.execute(update(OAuthAttempt).where(OAuthAttempt.id == claimed.attempt_id).values(
        outcome=AttemptOutcome.ATHLETE_CONFLICT, reason=reason, athlete_id=athlete_id,
        granted_scopes=scopes_text(granted)))
    return CallbackResult(OUTCOME_STATUS[AttemptOutcome.ATHLETE_CONFLICT], AttemptOutcome.ATHLETE_CONFLICT,
                          email=claimed.email, athlete_id=athlete_id, athlete_name=name,
                          retry_url=claimed.retry_url, reason=reason,
                          proven_browser=True, current=await connection_now(
                              session, claimed.user_id, AttemptOutcome.ATHLETE_CONFLICT, None, None))


async def store_connection(session: AsyncSession, rt: Runtime, claimed: ClaimedAttempt, grant: TokenGrant,
                           athlete_id: int, granted: frozenset[str], verdict: GrantVerdict) -> None:
    """Queue the catch-up, then store the encrypted grant on the user's connection, now connected,
    and write the outbound events that announce it (connected; permissions_changed when the grant
    differs from the previous one)."""
    now = claimed.claimed_at
    user = await session.get(User, claimed.user_id)
    assert user is not None
    conn = await connection_for(session, user, now)
    previous_scopes = conn.granted_scopes
    # Before the row takes the new grant: what Strava announced meanwhile is listed again.
    await queue_catch_up_for_connect(session, rt, conn, athlete_id, granted)
    store_grant(conn, grant, rt.cipher)
    conn.athlete_id = athlete_id
    history_log.record_scopes_change(session, user.id, now, conn.granted_scopes, scopes_text(granted))
    history_log.record_status_change(session, user.id, now, conn.status, ConnectionStatus.CONNECTED, verdict.status_reason)
    conn.granted_scopes = scopes_text(granted)
    if conn.status != ConnectionStatus.CONNECTED:
        conn.status_changed_at = now
    conn.status = ConnectionStatus.CONNECTED
    conn.status_reason = verdict.status_reason
    conn.connected_at = now
    conn.revoked_at = None
    conn.refresh_failures = 0
    conn.last_refresh_error = conn.last_refresh_error_kind = None
    conn.last_refresh_error_at = conn.next_refresh_at = None
    conn.updated_at = now
    data = connection_data(user.email, athlete_id, ConnectionStatus.CONNECTED, conn.granted_scopes)
    await write_event(session, rt.settings, now, CONNECTED, data, athlete_id=athlete_id, user_id=user.id)
    if previous_scopes is not None and previous_scopes != conn.granted_scopes:
        await write_event(session, rt.settings, now, PERMISSIONS_CHANGED,
                          {**data, "previous_scopes": sorted(s for s in previous_scopes.split(",") if s)},
                          athlete_id=athlete_id, user_id=user.id)


async def record_connected(session: AsyncSession, claimed: ClaimedAttempt, athlete_id: int, granted: frozenset[str],
                           verdict: GrantVerdict) -> str:
    """Record the attempt's outcome (connected, or partial with what is missing); a complete grant
    uses the link up. Returns the outcome."""
    outcome = AttemptOutcome.CONNECTED if verdict.complete else AttemptOutcome.PARTIAL
    await session.execute(update(OAuthAttempt).where(OAuthAttempt.id == claimed.attempt_id).values(
        outcome=outcome, reason=None if verdict.complete else "granted without " + ", ".join(verdict.missing_scopes),
        athlete_id=athlete_id, granted_scopes=scopes_text(granted)))
    if verdict.complete and claimed.link is not None:
        await session.execute(update(ConnectLink).where(ConnectLink.id == claimed.link.id)
                              .values(used_at=claimed.claimed_at))
    return outcome


def scopes_text(granted: frozenset[str]) -> str:
    """Granted scopes as stored on the attempt and the connection: sorted, comma-separated."""
    return ",".join(sorted(granted))
