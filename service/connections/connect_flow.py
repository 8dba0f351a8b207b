"""The Connect flow: link page -> Strava authorize -> callback -> stored, encrypted grant.

Every attempt is recorded (who, when, outcome, reason) so "Authorization failed" can be
diagnosed afterwards. State is random, single use, short-lived and bound to the browser by a
cookie; only digests of both are stored.

The browser that started an attempt (it holds the cookie) may come back to the callback as often
as it likes: reloading, going back, or a phone restoring the tab shows the settled outcome again,
and never runs the exchange twice. Any other browser learns nothing about the account and gets no
link: a callback URL can leak (history, proxy logs), the cookie cannot.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from service.background.webhooks.catchup import queue_catch_up_for_connect
from service.connections.links import connect_url, resolve_link
from service.connections.tokens import store_grant
from service.connections.users import connection_for
from service.core import vocab
from service.core.clock import to_epoch
from service.core.crypto import constant_time_equals, digest, random_alphanumeric
from service.core.runtime import Runtime
from service.db.models import ConnectLink, OAuthAttempt, StravaConnection, User
from service.strava import AppCredentialsRejected, StravaError

log = logging.getLogger(__name__)

STATE_TTL = timedelta(minutes=10)

# A browser secret we issued: random_alphanumeric's alphabet, at least as long as we make them.
_BROWSER_SECRET = re.compile(r"[A-Za-z0-9]{32,128}")

# Page-only outcome, never stored: a settled attempt that this browser cannot prove it started.
ALREADY_FINISHED = "already_finished"

# The HTTP status of each settled outcome, the first time and on every reload.
OUTCOME_STATUS = {
    vocab.ATTEMPT_CONNECTED: 200,
    vocab.ATTEMPT_PARTIAL: 200,
    vocab.ATTEMPT_DENIED: 403,
    vocab.ATTEMPT_ATHLETE_CONFLICT: 409,
    vocab.ATTEMPT_STATE_INVALID: 400,
    vocab.ATTEMPT_EXCHANGE_FAILED: 400,
    vocab.ATTEMPT_APP_REJECTED: 400,
}


@dataclass(frozen=True)
class ConnectStart:
    authorize_url: str
    browser_secret: str


class TooManyAttempts(Exception):
    """More sign-in attempts than FITGLUE_CONNECT_ATTEMPTS_PER_LINK / _PER_USER allow in the window.

    ``per`` is ``"link"`` or ``"user"``; ``retry_after_s`` is how long (seconds) until one more is
    allowed; ``cap`` and ``window_s`` are the limit that was reached.
    """

    def __init__(self, per: str, cap: int, window_s: int, retry_after_s: int) -> None:
        super().__init__(f"{cap} sign-in attempts per {per} within {window_s} s reached")
        self.per, self.cap, self.window_s, self.retry_after_s = per, cap, window_s, retry_after_s


@dataclass(frozen=True)
class CallbackResult:
    http_status: int
    outcome: str
    email: str | None = None
    athlete_id: int | None = None
    # The verdict on what Strava granted (connected and partial outcomes only).
    verdict: vocab.GrantVerdict | None = None
    # Only ever for the browser that started the attempt: it posted this link, so it holds it.
    retry_url: str | None = None
    reason: str | None = None
    # The browser holds the attempt's cookie (it started it); only then may a page name the account.
    proven_browser: bool = False
    # Shown again for a reload (or back, or a restored tab): nothing was done this time.
    replayed: bool = False

    @property
    def connected(self) -> bool:
        return self.outcome in (vocab.ATTEMPT_CONNECTED, vocab.ATTEMPT_PARTIAL)


# --- starting --------------------------------------------------------------------------------------


def usable_browser_secret(value: str | None) -> str | None:
    """The browser's existing secret when it is one we could have issued, else None."""
    return value if value is not None and _BROWSER_SECRET.fullmatch(value) else None


async def start_connect(rt: Runtime, token: str | None, browser_secret: str | None = None) -> ConnectStart:
    """Record a pending attempt and build the Strava authorize URL.

    ``browser_secret`` is the browser's cookie from an earlier attempt, reused so that several
    attempts (tabs) in one browser all stay provable. Raises LinkProblem, TooManyAttempts.
    """
    strava = rt.require_strava()
    state = random_alphanumeric(43)  # ~256 bits
    browser_secret = usable_browser_secret(browser_secret) or random_alphanumeric(32)  # ~190 bits
    now = rt.clock.now()
    async with rt.write() as session:
        link = await resolve_link(session, rt.link_signer, rt.clock, token)
        await check_attempt_caps(rt, session, link, now)
        session.add(OAuthAttempt(user_id=link.user_id, link_id=link.id, state_hash=digest(state),
                                 browser_hash=digest(browser_secret), started_at=now,
                                 expires_at=now + STATE_TTL, outcome=vocab.PENDING))
    url = strava.authorize_url(rt.settings.oauth_callback_url, state, vocab.REQUESTED_SCOPES)
    return ConnectStart(authorize_url=url, browser_secret=browser_secret)


async def check_attempt_caps(rt: Runtime, session: AsyncSession, link: ConnectLink, now: datetime) -> None:
    """Raise TooManyAttempts when this link, or its user, started as many attempts as allowed lately.

    Every attempt is a row; the caps bound how fast one link (or one user's links) can add them.
    """
    settings = rt.settings
    window = timedelta(seconds=settings.connect_attempt_window_s)
    # PostgreSQL: one user's attempts are counted and added one request at a time (on SQLite the
    # write transaction already is exclusive, and FOR UPDATE is not rendered).
    await session.execute(select(User.id).where(User.id == link.user_id).with_for_update())
    recent = (OAuthAttempt.user_id == link.user_id, OAuthAttempt.started_at > now - window)
    for per, cap, where in (("link", settings.connect_attempts_per_link, (*recent, OAuthAttempt.link_id == link.id)),
                            ("user", settings.connect_attempts_per_user, recent)):
        count = int(await session.scalar(select(func.count()).select_from(OAuthAttempt).where(*where)) or 0)
        if count < cap:
            continue
        # One more is allowed once enough of the oldest have left the window.
        freed_by = await session.scalar(select(OAuthAttempt.started_at).where(*where)
                                        .order_by(OAuthAttempt.started_at).offset(count - cap).limit(1))
        wait = (freed_by + window - now).total_seconds() if freed_by is not None else window.total_seconds()
        raise TooManyAttempts(per, cap, settings.connect_attempt_window_s, max(1, math.ceil(wait)))


# --- coming back -----------------------------------------------------------------------------------


def _retry_url(rt: Runtime, link: ConnectLink | None) -> str | None:
    """The link again, while it can still be used. Only for a browser that proved it holds it."""
    if link is None or link.used_at is not None or link.expires_at <= rt.clock.now():
        return None
    # Re-signing the same link id and expiry gives back the token this browser already posted.
    return connect_url(rt.settings.public_url, rt.link_signer.sign({"lid": link.id, "exp": to_epoch(link.expires_at)}))


async def _finish(rt: Runtime, attempt_id: int, outcome: str, reason: str | None, **values: object) -> None:
    async with rt.sessions() as session, session.begin():
        await session.execute(update(OAuthAttempt).where(OAuthAttempt.id == attempt_id)
                              .values(outcome=outcome, reason=reason, **values))


def _unproven_browser(attempt: OAuthAttempt) -> CallbackResult:
    """This browser does not hold the attempt's cookie: say what we can without naming anyone."""
    if attempt.outcome != vocab.PENDING:
        return CallbackResult(410, ALREADY_FINISHED, reason="the sign-in has already finished")
    # Leave the real attempt alone so its owner can still finish.
    return CallbackResult(400, vocab.ATTEMPT_STATE_INVALID,
                          reason="it was started in a different browser, or this browser did not keep FitGlue's cookie")


def settled_result(rt: Runtime, attempt: OAuthAttempt, email: str | None, link: ConnectLink | None) -> CallbackResult:
    """The outcome of an attempt that already finished, for the browser that started it."""
    retry = _retry_url(rt, link)
    if attempt.outcome == vocab.PENDING:
        # Claimed by a callback that is still exchanging the code, or that died doing so.
        return CallbackResult(409, vocab.PENDING, email=email, retry_url=retry, proven_browser=True, replayed=True,
                              reason="FitGlue is still finishing this sign-in, or it was interrupted")
    verdict = None
    if attempt.outcome in (vocab.ATTEMPT_CONNECTED, vocab.ATTEMPT_PARTIAL):
        verdict = vocab.grant_verdict(vocab.parse_scopes(attempt.granted_scopes))
        retry = None if verdict.complete else retry
    if attempt.outcome == vocab.ATTEMPT_APP_REJECTED:
        retry = None  # our own app is the problem: trying again does not help
    return CallbackResult(OUTCOME_STATUS.get(attempt.outcome, 400), attempt.outcome, email=email,
                          athlete_id=attempt.athlete_id, verdict=verdict, retry_url=retry, reason=attempt.reason,
                          proven_browser=True, replayed=True)


async def complete_connect(rt: Runtime, params: Mapping[str, str], browser_secret: str | None) -> CallbackResult:
    strava = rt.require_strava()
    state = params.get("state") or ""
    now = rt.clock.now()
    if not state:
        return CallbackResult(400, vocab.ATTEMPT_STATE_INVALID, reason="the callback carried no state")

    async with rt.sessions() as session, session.begin():
        attempt = (await session.execute(select(OAuthAttempt).where(OAuthAttempt.state_hash == digest(state)))
                   ).scalar_one_or_none()
        if attempt is None:
            return CallbackResult(400, vocab.ATTEMPT_STATE_INVALID, reason="unknown sign-in attempt")
        if not constant_time_equals(digest(browser_secret or ""), attempt.browser_hash):
            return _unproven_browser(attempt)
        user = await session.get(User, attempt.user_id)
        link = await session.get(ConnectLink, attempt.link_id) if attempt.link_id else None
        email = user.email if user else None
        # Claim the attempt: only one callback per state ever proceeds; a reload sees it settled.
        claimed = await session.execute(
            update(OAuthAttempt).where(OAuthAttempt.id == attempt.id, OAuthAttempt.finished_at.is_(None))
            .values(finished_at=now))
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            await session.refresh(attempt)
            return settled_result(rt, attempt, email, link)
        attempt_id, expired = attempt.id, attempt.expires_at <= now
    retry = _retry_url(rt, link)

    async def fail(outcome: str, reason: str, retry_url: str | None = retry) -> CallbackResult:
        """Record why the attempt did not connect and say so to the browser that started it."""
        await _finish(rt, attempt_id, outcome, reason)
        return CallbackResult(OUTCOME_STATUS[outcome], outcome, email=email, retry_url=retry_url, reason=reason,
                              proven_browser=True)

    if expired:
        return await fail(vocab.ATTEMPT_STATE_INVALID, "the sign-in took longer than 10 minutes")
    if params.get("error"):
        error = params["error"][:100]
        if error == "access_denied":
            return await fail(vocab.ATTEMPT_DENIED, "the permission request was declined at Strava")
        return await fail(vocab.ATTEMPT_EXCHANGE_FAILED, f"Strava reported {error}")
    code = params.get("code") or ""
    if not code:
        return await fail(vocab.ATTEMPT_EXCHANGE_FAILED, "Strava sent no authorization code")

    granted = vocab.parse_scopes(params.get("scope"))
    try:
        grant = await strava.exchange_code(code)
    except AppCredentialsRejected as exc:
        result = await fail(vocab.ATTEMPT_APP_REJECTED, exc.summary, retry_url=None)  # our app, not the user
        await rt.alerts.alert("app_credentials_rejected", "Strava rejected FitGlue's client credentials "
                              "during a code exchange")
        return result
    except StravaError as exc:
        return await fail(vocab.ATTEMPT_EXCHANGE_FAILED, exc.summary)

    athlete_id = int((grant.athlete or {}).get("id") or 0) or None
    if athlete_id is None:
        return await fail(vocab.ATTEMPT_EXCHANGE_FAILED, "Strava's answer did not say which athlete signed in")

    # One verdict decides the outcome, the status reason and whether the link is used up.
    verdict = vocab.grant_verdict(granted)
    outcome = vocab.ATTEMPT_CONNECTED if verdict.complete else vocab.ATTEMPT_PARTIAL
    scopes_text = ",".join(sorted(granted))
    async with rt.sessions() as session, session.begin():
        other = (await session.execute(select(StravaConnection).where(
            StravaConnection.athlete_id == athlete_id, StravaConnection.user_id != attempt.user_id))
        ).scalar_one_or_none()
        if other is not None:
            # Refuse and simply discard the new tokens: deauthorizing would also revoke the
            # grant of the FitGlue user this athlete already belongs to.
            reason = f"Strava athlete {athlete_id} is already connected to another FitGlue account"
            await session.execute(update(OAuthAttempt).where(OAuthAttempt.id == attempt_id).values(
                outcome=vocab.ATTEMPT_ATHLETE_CONFLICT, reason=reason, athlete_id=athlete_id,
                granted_scopes=scopes_text))
            return CallbackResult(OUTCOME_STATUS[vocab.ATTEMPT_ATHLETE_CONFLICT], vocab.ATTEMPT_ATHLETE_CONFLICT,
                                  email=email, athlete_id=athlete_id, retry_url=retry, reason=reason,
                                  proven_browser=True)
        user = await session.get(User, attempt.user_id)
        assert user is not None
        conn = await connection_for(session, user, now)
        # Before the row takes the new grant: what Strava announced meanwhile is listed again.
        await queue_catch_up_for_connect(session, rt, conn, athlete_id, granted)
        store_grant(conn, grant, rt.cipher)
        conn.athlete_id = athlete_id
        conn.granted_scopes = scopes_text
        if conn.status != vocab.CONNECTED:
            conn.status_changed_at = now
        conn.status = vocab.CONNECTED
        conn.status_reason = verdict.status_reason
        conn.connected_at = now
        conn.revoked_at = None
        conn.refresh_failures = 0
        conn.last_refresh_error = conn.last_refresh_error_kind = None
        conn.last_refresh_error_at = conn.next_refresh_at = None
        conn.updated_at = now
        await session.execute(update(OAuthAttempt).where(OAuthAttempt.id == attempt_id).values(
            outcome=outcome, reason=None if verdict.complete else "granted without " + ", ".join(verdict.missing_scopes),
            athlete_id=athlete_id, granted_scopes=scopes_text))
        if verdict.complete and link is not None:
            await session.execute(update(ConnectLink).where(ConnectLink.id == link.id).values(used_at=now))
    log.info("user %s connected Strava athlete %s (%s)", attempt.user_id, athlete_id, outcome)
    return CallbackResult(OUTCOME_STATUS[outcome], outcome, email=email, athlete_id=athlete_id, verdict=verdict,
                          retry_url=None if verdict.complete else retry, proven_browser=True)
