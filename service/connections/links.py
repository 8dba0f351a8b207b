"""Connect links: signed, expiring, single use, bound to one FitGlue user.

The signed token carries only the link id and expiry; the row says whom it is for and whether a
complete connect has used it. Opening the page never uses a link up (unfurlers and mail scanners
fetch links); only a connect with every needed permission does.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlencode

from sqlalchemy.ext.asyncio import AsyncSession

from service.core.clock import Clock, from_epoch, to_epoch
from service.core.crypto import BadSignature, Signer
from service.db.models import ConnectLink, User


class LinkProblem(Exception):
    """A Connect link that cannot be used: `status` is the page's HTTP status, `code` the stable word."""

    status = 400
    code = "link_invalid"


class LinkTampered(LinkProblem):
    """The token is malformed or its signature does not verify (status and code as LinkProblem's)."""


class LinkExpired(LinkProblem):
    status, code = 410, "link_expired"


class LinkUsed(LinkProblem):
    status, code = 410, "link_used"

    def __init__(self, message: str, user_id: int | None = None) -> None:
        super().__init__(message)
        self.user_id = user_id  # whose link it was: the page can say how their Strava is now


@dataclass(frozen=True)
class IssuedLink:
    url: str
    token: str
    expires_at: datetime
    link_id: str


def connect_url(public_url: str, token: str) -> str:
    return f"{public_url}/connect/strava?{urlencode({'t': token})}"


async def issue_link(session: AsyncSession, signer: Signer, clock: Clock, user: User, issued_by: str,
                     ttl_s: int, public_url: str) -> IssuedLink:
    now = clock.now()
    expires = now + timedelta(seconds=ttl_s)
    link = ConnectLink(id=secrets.token_urlsafe(16), user_id=user.id, issued_by=issued_by, created_at=now,
                       expires_at=expires)
    session.add(link)
    await session.flush()
    token = signer.sign({"lid": link.id, "exp": to_epoch(expires)})
    return IssuedLink(url=connect_url(public_url, token), token=token, expires_at=expires, link_id=link.id)


async def resolve_link(session: AsyncSession, signer: Signer, clock: Clock, token: str | None) -> ConnectLink:
    """The link behind a token, or the reason it cannot be used (tampered 400; expired/used 410)."""
    try:
        claims = signer.verify(token or "")
    except BadSignature:
        raise LinkTampered("this link is damaged or was not issued by FitGlue") from None
    link_id, exp = claims.get("lid"), claims.get("exp")
    if not isinstance(link_id, str) or not isinstance(exp, int):
        raise LinkTampered("this link is damaged or was not issued by FitGlue")
    if from_epoch(exp) <= clock.now():
        raise LinkExpired("this link has expired")
    link = await session.get(ConnectLink, link_id)
    if link is None:
        # Signed by us but gone: its user was erased. Treat it as no longer usable.
        raise LinkExpired("this link is no longer valid")
    if link.used_at is not None:
        raise LinkUsed("this link has already been used to connect Strava", user_id=link.user_id)
    if link.expires_at <= clock.now():
        raise LinkExpired("this link has expired")
    return link
