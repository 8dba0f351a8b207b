"""Periodic look at the conditions worth an alert. While one holds, `rt.alerts.alert(kind, …)` is
called on every check (the sink opens an incident once and stays quiet after); once it clears, the
sink's `resolve(kind)` closes the incident (sinks without `resolve`, like the log, just skip it).

Only local state is read — no Strava call — so the check costs nothing from the API budget.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import func, select

from service.core.runtime import Runtime
from service.db.models import OAuthAttempt, OutboundEvent, StravaConnection, WebhookRegistration
from service.outbox import FAILED as EVENT_FAILED
from service.subscription.state import strava_listed_none
from troubleshooting.vocabulary import AttemptOutcome, ConnectionStatus, RefreshErrorKind

log = logging.getLogger(__name__)

ALERT_CHECK_INTERVAL_S = 300
BUDGET_ALERT_SHARE = 0.9
REAUTH_SPIKE_WINDOW = timedelta(hours=1)
REAUTH_SPIKE_COUNT = 5

KINDS = ("subscription_lost", "subscription_failing", "budget_high", "app_credentials_rejected", "reauth_spike",
         "events_parked")


async def budget_high(rt: Runtime) -> str | None:
    from service.desk.support_desk import SupportDesk

    report = await SupportDesk(rt).webhooks.rate_limit_report()
    hot = [(budget, window, usage) for budget, windows in report.budgets.items()
           for window, usage in windows.items() if usage.usage is not None and usage.share >= BUDGET_ALERT_SHARE]
    if not hot:
        return None
    budget, window, usage = max(hot, key=lambda h: h[2].share)
    return (f"Strava API budget at {usage.share:.0%} ({budget} calls, {window} window: {usage.usage} of "
            f"{usage.limit}); background work waits for the reset at {usage.resets_at:%H:%M} UTC.")


async def reauth_spike(rt: Runtime, now: datetime) -> str | None:
    async with rt.sessions() as session:
        count = await session.scalar(select(func.count()).select_from(StravaConnection).where(
            StravaConnection.status.in_((ConnectionStatus.NEEDS_REAUTH, ConnectionStatus.REVOKED)),
            StravaConnection.status_changed_at >= now - REAUTH_SPIKE_WINDOW))
    count = int(count or 0)
    if count < REAUTH_SPIKE_COUNT:
        return None
    return (f"{count} Strava connections needed re-authorization or were revoked in the last hour — more than "
            "usual; check for a Strava incident or a change on our side before contacting users.")


async def subscription_problems(rt: Runtime) -> tuple[str | None, str | None]:
    """(lost, failing) messages from what the last live look and the last registration found."""
    async with rt.sessions() as session:
        listed_none = await strava_listed_none(session)
        last = (await session.execute(select(WebhookRegistration).order_by(
            WebhookRegistration.at.desc(), WebhookRegistration.id.desc()).limit(1))).scalar_one_or_none()
    lost = None
    if listed_none:
        lost = ("Strava lists no push subscription for FitGlue: no new activities arrive. Run "
                "`/fitglue webhook register` (or `fitglue webhook register`).")
    failing = None
    if last is not None and last.outcome == "failed":
        failing = f"Registering the Strava push subscription failed: {last.error or 'no reason recorded'}."
    return lost, failing


async def app_credentials_rejected(rt: Runtime) -> str | None:
    """Open while the latest use of the app's credentials was a rejection."""
    async with rt.sessions() as session:
        rejected = [await session.scalar(select(func.max(StravaConnection.last_refresh_error_at)).where(
                        StravaConnection.last_refresh_error_kind == RefreshErrorKind.APP_CREDENTIALS_REJECTED)),
                    await session.scalar(select(func.max(OAuthAttempt.finished_at)).where(
                        OAuthAttempt.outcome == AttemptOutcome.APP_REJECTED))]
        worked = [await session.scalar(select(func.max(StravaConnection.last_refresh_at))),
                  await session.scalar(select(func.max(OAuthAttempt.finished_at)).where(
                      OAuthAttempt.outcome.in_((AttemptOutcome.CONNECTED, AttemptOutcome.PARTIAL))))]
    last_rejected = max((t for t in rejected if t is not None), default=None)
    last_worked = max((t for t in worked if t is not None), default=None)
    if last_rejected is None or (last_worked is not None and last_worked > last_rejected):
        return None
    return ("Strava rejects FitGlue's client id/secret: no token can be refreshed and nobody can connect. "
            "Check STRAVA_CLIENT_ID and STRAVA_CLIENT_SECRET against the Strava API settings.")


async def events_parked(rt: Runtime) -> str | None:
    """Open while outbound events are parked as failed (the delivery opens it when it parks one)."""
    from service.background.outbound import parked_message

    async with rt.sessions() as session:
        count = int(await session.scalar(select(func.count()).select_from(OutboundEvent).where(
            OutboundEvent.state == EVENT_FAILED)) or 0)
    return parked_message(count) if count else None


async def evaluate(rt: Runtime) -> dict[str, str | None]:
    """kind -> the alert message while the condition holds, None when it does not."""
    now = rt.clock.now()
    lost, failing = await subscription_problems(rt)
    return {
        "subscription_lost": lost,
        "subscription_failing": failing,
        "budget_high": await budget_high(rt),
        "app_credentials_rejected": await app_credentials_rejected(rt),
        "reauth_spike": await reauth_spike(rt, now),
        "events_parked": await events_parked(rt),
    }


async def check_alerts(rt: Runtime) -> None:
    for kind, message in (await evaluate(rt)).items():
        if message is not None:
            await rt.alerts.alert(kind, message)
            continue
        resolve = getattr(rt.alerts, "resolve", None)  # optional in the AlertSink protocol
        if resolve is not None:
            await resolve(kind)
