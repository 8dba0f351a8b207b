"""The Connect pages' operations: what a Connect link shows, starting a sign-in, settling Strava's
callback. The pages (`service/web/connect_pages.py`) render what these decide.

The flow itself is `service.connections.connect_flow`; this module is the one door the web layer
goes through, and it names the outcomes a page tells apart: a link problem (`LinkProblem`: tampered
400, `LinkExpired` / `LinkUsed` 410), `TooManyAttempts` (429), and the callback's `CallbackResult`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from service.connections.connect_flow import (
    ALREADY_FINISHED,
    CallbackResult,
    ConnectionNow,
    ConnectStart,
    TooManyAttempts,
    complete_connect,
    connection_state,
    start_connect,
)
from service.connections.links import LinkExpired, LinkProblem, LinkUsed, resolve_link
from service.core.runtime import Runtime
from service.db.models import User
from service.strava import StravaError
from troubleshooting.permissions import GrantVerdict
from troubleshooting.vocabulary import AttemptOutcome, ConnectionStatus

__all__ = ["ALREADY_FINISHED", "CallbackResult", "ConnectStart", "ConnectionNow", "LinkExpired", "LinkProblem",
           "LinkUsed", "LinkView", "TooManyAttempts", "begin_sign_in", "fully_connected", "open_link",
           "settle_callback", "state_after_used_link"]


@dataclass(frozen=True)
class LinkView:
    """What the Connect page shows for a usable link: whose account, how its Strava stands now."""

    email: str
    status: str  # the connection's status (a ConnectionStatus word)
    verdict: GrantVerdict | None  # on the stored grant; None when not connected or not recorded
    expires_at: datetime  # UTC: when the link stops working


def fully_connected(status: str, verdict: GrantVerdict | None) -> bool:
    """Connected with every permission FitGlue needs. A grant whose scopes were not recorded counts:
    the diagnosis finds nothing missing in it either."""
    return status == ConnectionStatus.CONNECTED and (verdict is None or verdict.complete)


async def open_link(rt: Runtime, token: str | None) -> LinkView:
    """The account behind a Connect link token. Opening does not use the link up. Raises LinkProblem."""
    async with rt.sessions() as session:
        link = await resolve_link(session, rt.link_signer, rt.clock, token)
        user = await session.get(User, link.user_id)
        status, verdict = await connection_state(session, link.user_id)
    assert user is not None  # a link's user is erased with its links
    return LinkView(user.email, status, verdict, link.expires_at)


async def state_after_used_link(rt: Runtime, problem: LinkUsed) -> tuple[str, GrantVerdict | None]:
    """(status, verdict) of the connection a used link made, as it stands now."""
    if problem.user_id is None:
        return ConnectionStatus.NOT_CONNECTED, None
    async with rt.sessions() as session:
        return await connection_state(session, problem.user_id)


async def begin_sign_in(rt: Runtime, token: str | None, browser_secret: str | None) -> ConnectStart:
    """Record a pending attempt; where to send the browser and the secret its cookie keeps.
    Raises LinkProblem, TooManyAttempts."""
    return await start_connect(rt, token, browser_secret)


async def settle_callback(rt: Runtime, params: Mapping[str, str], browser_secret: str | None) -> CallbackResult:
    """Strava's callback (`state`, `code`, `scope`, `error`) settled; a Strava failure outside the
    flow's typed outcomes is a failed exchange (400)."""
    try:
        return await complete_connect(rt, params, browser_secret)
    except StravaError:
        return CallbackResult(400, AttemptOutcome.EXCHANGE_FAILED)
