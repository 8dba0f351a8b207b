"""The Connect flow: link page -> Strava authorize -> callback -> stored, encrypted grant.

Every attempt is recorded (who, when, outcome, reason) so "Authorization failed" can be
diagnosed afterwards. State is random, single use, short-lived and bound to the browser by a
cookie; only digests of both are stored.

The browser that started an attempt (it holds the cookie) may come back to the callback as often
as it likes: reloading, going back, or a phone restoring the tab shows the settled outcome again,
and never runs the exchange twice. Any other browser learns nothing about the account and gets no
link: a callback URL can leak (history, proxy logs), the cookie cannot.

Where the parts live: starting an attempt in ``connect_start``, the callback's steps in
``callback_steps``, what the callback answers in ``callback_outcomes``. This module is the
callback's sequence, and the one place the web layer imports the flow from.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from service.connections.callback_outcomes import (
    ALREADY_FINISHED,
    OUTCOME_STATUS,
    CallbackResult,
    ConnectionNow,
    athlete_name,
    connection_state,
)
from service.connections.callback_steps import (
    Refused,
    check_in_time,
    claim_attempt,
    code_from_strava,
    exchange_code,
    linked_to_another_user,
    record_connected,
    record_refusal,
    refuse_athlete_conflict,
    store_connection,
)
from service.connections.connect_start import ConnectStart, TooManyAttempts, start_connect
from service.core.runtime import Runtime
from troubleshooting.permissions import grant_verdict, parse_scopes

# What the web layer uses, whichever module of the flow defines it.
__all__ = ["ALREADY_FINISHED", "CallbackResult", "ConnectStart", "ConnectionNow", "TooManyAttempts",
           "complete_connect", "connection_state", "start_connect"]

log = logging.getLogger(__name__)


async def complete_connect(rt: Runtime, params: Mapping[str, str], browser_secret: str | None) -> CallbackResult:
    """Settle Strava's callback: ``params`` holds its ``state``, ``code``, ``scope`` and ``error``;
    ``browser_secret`` is the browser's cookie (None when it sent none).

    Runs the exchange at most once per attempt; a reload answers with the settled outcome. Raises
    only what the Strava client raises outside its typed errors (and ConfigError without Strava).
    """
    strava = rt.require_strava()
    claimed = await claim_attempt(rt, params.get("state") or "", browser_secret)
    if isinstance(claimed, CallbackResult):
        return claimed  # no such attempt, another browser, or a reload of a claimed one
    granted = parse_scopes(params.get("scope"))
    try:
        check_in_time(claimed)
        code = code_from_strava(params)
        grant, athlete_id = await exchange_code(strava, code)
    except Refused as refused:
        return await record_refusal(rt, claimed, refused)

    # One verdict decides the outcome, the status reason and whether the link is used up.
    verdict = grant_verdict(granted)
    name = athlete_name(grant.athlete)
    async with rt.sessions() as session, session.begin():
        if await linked_to_another_user(session, athlete_id, claimed.user_id):
            return await refuse_athlete_conflict(session, claimed, athlete_id, granted, name)
        await store_connection(session, rt, claimed, grant, athlete_id, granted, verdict)
        outcome = await record_connected(session, claimed, athlete_id, granted, verdict)
    log.info("user %s connected Strava athlete %s (%s)", claimed.user_id, athlete_id, outcome)
    announce_connected(rt, athlete_id)
    return CallbackResult(OUTCOME_STATUS[outcome], outcome, email=claimed.email, athlete_id=athlete_id,
                          athlete_name=name, verdict=verdict, retry_url=None if verdict.complete else claimed.retry_url,
                          proven_browser=True)


def announce_connected(rt: Runtime, athlete_id: int) -> None:
    """Start the ``rt.on_connected`` hooks in the background (among them: ensure the push
    subscription exists). Only after a Connect that just happened, never for a reload."""
    for hook in rt.on_connected:
        rt.spawn(hook(athlete_id))
