"""What the OAuth callback answers: ``CallbackResult``, the HTTP status of each settled outcome, and
the answers for a reload (``settled_result``) and for a browser that cannot prove it started the
attempt (``unproven_browser``).

Only the browser that started an attempt (it holds the cookie) is told whose account it was and
gets a link to try again; a callback URL can leak (history, proxy logs), the cookie cannot.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from service.connections.links import connect_url
from service.core.clock import to_epoch
from service.core.runtime import Runtime
from service.db.models import ConnectLink, OAuthAttempt, StravaConnection
from troubleshooting.permissions import GrantVerdict, grant_verdict, parse_scopes
from troubleshooting.vocabulary import AttemptOutcome, ConnectionStatus

# Page-only outcome, never stored: a settled attempt that this browser cannot prove it started.
ALREADY_FINISHED = "already_finished"

# The HTTP status of each settled outcome, the first time and on every reload.
OUTCOME_STATUS: dict[str, int] = {
    AttemptOutcome.CONNECTED: 200,
    AttemptOutcome.PARTIAL: 200,
    AttemptOutcome.DENIED: 403,
    AttemptOutcome.ATHLETE_CONFLICT: 409,
    AttemptOutcome.STATE_INVALID: 400,
    AttemptOutcome.EXCHANGE_FAILED: 400,
    AttemptOutcome.APP_REJECTED: 400,
}


@dataclass(frozen=True)
class ConnectionNow:
    """How the account's Strava connection stands when a result page is shown.

    ``changed`` says the page's outcome alone would now mislead: a connected sign-in whose grant
    was since disconnected, needs re-authorization, was revoked or replaced by another grant; or a
    sign-in that connected nothing while the account is connected now (another tab or link).
    """

    status: str
    verdict: GrantVerdict | None  # connected with recorded scopes only
    changed: bool


@dataclass(frozen=True)
class CallbackResult:
    http_status: int
    outcome: str
    email: str | None = None
    athlete_id: int | None = None
    # The Strava athlete's name as Strava's token answer gave it (the first answer only: a reload has none).
    athlete_name: str | None = None
    # The verdict on what Strava granted (connected and partial outcomes only).
    verdict: GrantVerdict | None = None
    # Only ever for the browser that started the attempt: it posted this link, so it holds it.
    retry_url: str | None = None
    reason: str | None = None
    # The browser holds the attempt's cookie (it started it); only then may a page name the account.
    proven_browser: bool = False
    # Shown again for a reload (or back, or a restored tab): nothing was done this time.
    replayed: bool = False
    # The connection as it stands now (proven browser, settled outcome): a page never claims more.
    current: ConnectionNow | None = None

    @property
    def connected(self) -> bool:
        return self.outcome in (AttemptOutcome.CONNECTED, AttemptOutcome.PARTIAL)


MAX_NAME_CHARS = 80


def athlete_name(athlete: object) -> str | None:
    """"First Last" from the athlete summary of Strava's token answer, or None when it has no name."""
    if not isinstance(athlete, dict):
        return None
    parts = [str(athlete.get(key) or "").strip() for key in ("firstname", "lastname")]
    name = " ".join(part for part in parts if part)
    return name[:MAX_NAME_CHARS] or None


def retry_url_for(rt: Runtime, link: ConnectLink | None) -> str | None:
    """The link again, while it can still be used. Only for a browser that proved it holds it."""
    if link is None or link.used_at is not None or link.expires_at <= rt.clock.now():
        return None
    # Re-signing the same link id and expiry gives back the token this browser already posted.
    return connect_url(rt.settings.public_url, rt.link_signer.sign({"lid": link.id, "exp": to_epoch(link.expires_at)}))


def unproven_browser(attempt: OAuthAttempt) -> CallbackResult:
    """This browser does not hold the attempt's cookie: say what we can without naming anyone."""
    if attempt.outcome != AttemptOutcome.PENDING:
        return CallbackResult(410, ALREADY_FINISHED, reason="the sign-in has already finished")
    # Leave the real attempt alone so its owner can still finish.
    return CallbackResult(400, AttemptOutcome.STATE_INVALID,
                          reason="it was started in a different browser, or this browser did not keep FitGlue's cookie")


async def connection_state(session: AsyncSession, user_id: int) -> tuple[str, GrantVerdict | None]:
    """The user's connection status and the verdict on its grant (None: not connected or unrecorded)."""
    now = await connection_now(session, user_id, AttemptOutcome.DENIED, None, None)
    return now.status, now.verdict


async def connection_now(session: AsyncSession, user_id: int, outcome: str, athlete_id: int | None,
                         granted_scopes: str | None) -> ConnectionNow:
    """The connection now, against what a sign-in with this outcome, athlete and scopes stored."""
    row = (await session.execute(select(StravaConnection.status, StravaConnection.athlete_id,
                                        StravaConnection.granted_scopes)
                                 .where(StravaConnection.user_id == user_id))).first()
    status, athlete, scopes = row if row is not None else (ConnectionStatus.NOT_CONNECTED, None, None)
    verdict = grant_verdict(parse_scopes(scopes)) if status == ConnectionStatus.CONNECTED and scopes is not None \
        else None
    if outcome in (AttemptOutcome.CONNECTED, AttemptOutcome.PARTIAL):
        changed = (status != ConnectionStatus.CONNECTED or athlete != athlete_id
                   or parse_scopes(scopes) != parse_scopes(granted_scopes))
    else:
        changed = status == ConnectionStatus.CONNECTED
    return ConnectionNow(status, verdict, changed)


async def settled_result(rt: Runtime, session: AsyncSession, attempt: OAuthAttempt, email: str | None,
                         link: ConnectLink | None) -> CallbackResult:
    """The outcome of an attempt that already finished, for the browser that started it, with how
    the connection stands now."""
    retry = retry_url_for(rt, link)
    if attempt.outcome == AttemptOutcome.PENDING:
        # Claimed by a callback that is still exchanging the code, or that died doing so.
        return CallbackResult(409, AttemptOutcome.PENDING, email=email, retry_url=retry, proven_browser=True, replayed=True,
                              reason="FitGlue is still finishing this sign-in, or it was interrupted")
    verdict = None
    if attempt.outcome in (AttemptOutcome.CONNECTED, AttemptOutcome.PARTIAL):
        verdict = grant_verdict(parse_scopes(attempt.granted_scopes))
        retry = None if verdict.complete else retry
    if attempt.outcome == AttemptOutcome.APP_REJECTED:
        retry = None  # our own app is the problem: trying again does not help
    current = await connection_now(session, attempt.user_id, attempt.outcome, attempt.athlete_id, attempt.granted_scopes)
    return CallbackResult(OUTCOME_STATUS.get(attempt.outcome, 400), attempt.outcome, email=email,
                          athlete_id=attempt.athlete_id, verdict=verdict, retry_url=retry, reason=attempt.reason,
                          proven_browser=True, replayed=True, current=current)
