"""Starting a Connect attempt: the Connect page's button -> a recorded pending attempt -> Strava's
authorize URL.

The attempt's ``state`` is random, single use and short-lived (``STATE_TTL``), and bound to the
browser by a secret kept in a cookie; only digests of both are stored. How fast one link, or one
user's links, may start attempts is capped (``TooManyAttempts``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from service.connections.links import resolve_link
from service.core.crypto import digest, random_alphanumeric
from service.core.runtime import Runtime
from service.db.models import ConnectLink, OAuthAttempt, User
from troubleshooting.vocabulary import REQUESTED_SCOPES, AttemptOutcome

STATE_TTL = timedelta(minutes=10)

# A browser secret we issued: random_alphanumeric's alphabet, at least as long as we make them.
_BROWSER_SECRET = re.compile(r"[A-Za-z0-9]{32,128}")


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
                                 expires_at=now + STATE_TTL, outcome=AttemptOutcome.PENDING))
    url = strava.authorize_url(rt.settings.oauth_callback_url, state, REQUESTED_SCOPES)
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
