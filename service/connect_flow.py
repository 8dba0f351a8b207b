"""The Connect flow: link page -> Strava authorize -> callback -> stored, encrypted grant.

Every attempt is recorded (who, when, outcome, reason) so "Authorization failed" can be
diagnosed afterwards. State is random, single use, short-lived and bound to the browser by a
cookie; only digests of both are stored.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from authlib.common.security import generate_token
from sqlalchemy import select, update

from . import vocab
from .clock import to_epoch
from .crypto import constant_time_equals, digest
from .db.models import ConnectLink, OAuthAttempt, StravaConnection, User
from .links import connect_url, resolve_link
from .runtime import Runtime
from .strava import AppCredentialsRejected, StravaError
from .tokens import store_grant
from .users import connection_for
from .webhooks.catchup import queue_catch_up_for_connect

log = logging.getLogger(__name__)

STATE_TTL = timedelta(minutes=10)


@dataclass(frozen=True)
class ConnectStart:
    authorize_url: str
    browser_secret: str


@dataclass(frozen=True)
class CallbackResult:
    http_status: int
    outcome: str
    email: str | None = None
    athlete_id: int | None = None
    missing_scopes: tuple[str, ...] = ()
    granted_scopes: tuple[str, ...] = ()
    retry_url: str | None = None
    reason: str | None = None
    # The callback came back to a browser that did not start it: leave that browser's cookie alone.
    foreign_browser: bool = False

    @property
    def connected(self) -> bool:
        return self.outcome in (vocab.ATTEMPT_CONNECTED, vocab.ATTEMPT_PARTIAL)


async def start_connect(rt: Runtime, token: str | None) -> ConnectStart:
    """Record a pending attempt and build the Strava authorize URL. Raises LinkProblem."""
    strava = rt.require_strava()
    state, browser_secret = generate_token(43), generate_token(32)  # ~256 and ~190 bits
    now = rt.clock.now()
    async with rt.sessions() as session, session.begin():
        link = await resolve_link(session, rt.link_signer, rt.clock, token)
        session.add(OAuthAttempt(user_id=link.user_id, link_id=link.id, state_hash=digest(state),
                                 browser_hash=digest(browser_secret), started_at=now,
                                 expires_at=now + STATE_TTL, outcome=vocab.PENDING))
    url = strava.authorize_url(rt.settings.oauth_callback_url, state, vocab.REQUESTED_SCOPES)
    return ConnectStart(authorize_url=url, browser_secret=browser_secret)


def _retry_url(rt: Runtime, link: ConnectLink | None) -> str | None:
    if link is None or link.used_at is not None or link.expires_at <= rt.clock.now():
        return None
    # Re-signing the same link id and expiry gives a working token for the same link.
    return connect_url(rt.settings.public_url, rt.link_signer.sign({"lid": link.id, "exp": to_epoch(link.expires_at)}))


async def _finish(rt: Runtime, attempt_id: int, outcome: str, reason: str | None, **values: object) -> None:
    async with rt.sessions() as session, session.begin():
        await session.execute(update(OAuthAttempt).where(OAuthAttempt.id == attempt_id)
                              .values(outcome=outcome, reason=reason, **values))


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
        user = await session.get(User, attempt.user_id)
        link = await session.get(ConnectLink, attempt.link_id) if attempt.link_id else None
        email = user.email if user else None
        if not constant_time_equals(digest(browser_secret or ""), attempt.browser_hash):
            # Another browser (or none) came back with this state: refuse, but leave the real
            # attempt alone so its owner can still finish.
            return CallbackResult(400, vocab.ATTEMPT_STATE_INVALID, email=email, retry_url=_retry_url(rt, link),
                                  reason="the sign-in started in a different browser", foreign_browser=True)
        # Claim the attempt: only one callback per state ever proceeds (replays lose here).
        claimed = await session.execute(
            update(OAuthAttempt).where(OAuthAttempt.id == attempt.id, OAuthAttempt.finished_at.is_(None))
            .values(finished_at=now))
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            return CallbackResult(400, vocab.ATTEMPT_STATE_INVALID, email=email, retry_url=_retry_url(rt, link),
                                  reason="this sign-in attempt was already completed")
        attempt_id, expired = attempt.id, attempt.expires_at <= now
    retry = _retry_url(rt, link)

    if expired:
        reason = "the sign-in took longer than 10 minutes"
        await _finish(rt, attempt_id, vocab.ATTEMPT_STATE_INVALID, reason)
        return CallbackResult(400, vocab.ATTEMPT_STATE_INVALID, email=email, retry_url=retry, reason=reason)
    if params.get("error"):
        error = params["error"][:100]
        outcome = vocab.ATTEMPT_DENIED if error == "access_denied" else vocab.ATTEMPT_EXCHANGE_FAILED
        reason = "the permission request was declined at Strava" if error == "access_denied" else f"Strava reported {error}"
        await _finish(rt, attempt_id, outcome, reason)
        return CallbackResult(403 if outcome == vocab.ATTEMPT_DENIED else 400, outcome, email=email,
                              retry_url=retry, reason=reason)
    code = params.get("code") or ""
    if not code:
        reason = "Strava sent no authorization code"
        await _finish(rt, attempt_id, vocab.ATTEMPT_EXCHANGE_FAILED, reason)
        return CallbackResult(400, vocab.ATTEMPT_EXCHANGE_FAILED, email=email, retry_url=retry, reason=reason)

    granted = vocab.parse_scopes(params.get("scope"))
    try:
        grant = await strava.exchange_code(code)
    except AppCredentialsRejected as exc:
        await _finish(rt, attempt_id, vocab.ATTEMPT_APP_REJECTED, exc.summary)
        await rt.alerts.alert("app_credentials_rejected", "Strava rejected FitGlue's client credentials "
                              "during a code exchange")
        return CallbackResult(400, vocab.ATTEMPT_APP_REJECTED, email=email, reason=exc.summary)
    except StravaError as exc:
        await _finish(rt, attempt_id, vocab.ATTEMPT_EXCHANGE_FAILED, exc.summary)
        return CallbackResult(400, vocab.ATTEMPT_EXCHANGE_FAILED, email=email, retry_url=retry, reason=exc.summary)

    athlete_id = int((grant.athlete or {}).get("id") or 0) or None
    if athlete_id is None:
        reason = "Strava's answer did not say which athlete signed in"
        await _finish(rt, attempt_id, vocab.ATTEMPT_EXCHANGE_FAILED, reason)
        return CallbackResult(400, vocab.ATTEMPT_EXCHANGE_FAILED, email=email, retry_url=retry, reason=reason)

    missing = vocab.missing_needed_scopes(granted)
    outcome = vocab.ATTEMPT_PARTIAL if missing else vocab.ATTEMPT_CONNECTED
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
                granted_scopes=",".join(sorted(granted))))
            return CallbackResult(409, vocab.ATTEMPT_ATHLETE_CONFLICT, email=email, athlete_id=athlete_id,
                                  retry_url=retry, reason=reason)
        user = await session.get(User, attempt.user_id)
        assert user is not None
        conn = await connection_for(session, user, now)
        # Before the row takes the new grant: what Strava announced meanwhile is listed again.
        await queue_catch_up_for_connect(session, rt, conn, athlete_id, granted)
        store_grant(conn, grant, rt.cipher)
        conn.athlete_id = athlete_id
        conn.granted_scopes = ",".join(sorted(granted))
        if conn.status != vocab.CONNECTED:
            conn.status_changed_at = now
        conn.status = vocab.CONNECTED
        conn.status_reason = "connected with every needed permission" if not missing else (
            "connected without " + ", ".join(missing))
        conn.connected_at = now
        conn.revoked_at = None
        conn.refresh_failures = 0
        conn.last_refresh_error = conn.last_refresh_error_kind = None
        conn.last_refresh_error_at = conn.next_refresh_at = None
        conn.updated_at = now
        await session.execute(update(OAuthAttempt).where(OAuthAttempt.id == attempt_id).values(
            outcome=outcome, reason=None if not missing else "granted without " + ", ".join(missing),
            athlete_id=athlete_id, granted_scopes=",".join(sorted(granted))))
        if not missing and link is not None:
            await session.execute(update(ConnectLink).where(ConnectLink.id == link.id).values(used_at=now))
    log.info("user %s connected Strava athlete %s (%s)", attempt.user_id, athlete_id, outcome)
    return CallbackResult(200, outcome, email=email, athlete_id=athlete_id, missing_scopes=tuple(missing),
                          granted_scopes=tuple(sorted(granted)), retry_url=retry if missing else None)
