"""The daily digest in FITGLUE_ALERT_CHANNEL, at FITGLUE_DIGEST_HOUR_UTC (issue 13).

`digest_check` runs every FITGLUE_DIGEST_CHECK_S on every replica. Each time it samples the Strava
budgets (the peak use per window since the last digest is kept in `app_state`, since the ledger
keeps only the current window), and from the digest hour on it posts the day's digest once: the
replica that moves `app_state["digest.last_day"]` to today (a conditional upsert) posts; the others
see it moved. A post that fails gives the day back, so the next check tries again.

Everything comes from local state — no Strava call: new needs_reauth, revoked, missing_permissions
and authorization_failed in the last 24 hours with their top reasons, each naming the
`/fitglue affected …` command that lists the users (Slack has no link that runs a slash command);
the budget peaks; webhook events received and processed, and the oldest still waiting; agent actions.
Off while FITGLUE_ALERT_CHANNEL is unset or the bot is not mounted in this process.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from service.core.clock import iso_utc
from service.core.runtime import Runtime
from service.db.app_state import get_value, set_value
from service.db.dialect import insert_for
from service.db.models import AppState, AuditEntry, RateLimitState, WebhookEvent
from service.desk.observations import thresholds_from
from service.desk.support_desk import SupportDesk
from service.ratelimit.windows import same_window
from service.subscription.state import NEW, PROCESSED

log = logging.getLogger(__name__)

LAST_DAY_KEY = "digest.last_day"
PEAKS_KEY = "digest.budget_peaks"
DIGEST_FINDINGS = ("needs_reauth", "revoked", "missing_permissions", "authorization_failed")
PERIOD = timedelta(days=1)


async def sample_budget_peaks(rt: Runtime) -> dict[str, int]:
    """Fold the current use of each budget window (percent of its limit) into the kept peaks."""
    now = rt.clock.now()
    async with rt.write() as session:
        rows = (await session.execute(select(RateLimitState))).scalars().all()
        kept = json.loads(await get_value(session, PEAKS_KEY) or "{}")
        peaks: dict[str, int] = dict(kept.get("peaks") or {})
        for row in rows:
            for window, usage, limit in (("15min", row.usage_15min, row.limit_15min),
                                         ("daily", row.usage_daily, row.limit_daily)):
                if usage is None or not limit or not same_window(window, row.observed_at, now):
                    continue
                name = f"{row.budget} {window}"
                peaks[name] = max(peaks.get(name, 0), round(100 * usage / limit))
        await set_value(session, PEAKS_KEY, json.dumps({"since": kept.get("since") or iso_utc(now),
                                                        "peaks": peaks}), now)
    return peaks


async def gather_digest(rt: Runtime, now: datetime) -> dict[str, Any]:
    """The digest's content for the 24 hours before `now` (see the module docstring)."""
    from service.desk.affected import top_reasons

    start, desk, thresholds = now - PERIOD, SupportDesk(rt), thresholds_from(rt.settings)
    new = []
    for finding in DIGEST_FINDINGS:
        report = await desk.affected.report(finding, start)
        reasons = await top_reasons(rt, finding, start, thresholds) if report.count else []
        new.append({"finding": finding, "count": report.count, "top_reasons": [[r, n] for r, n in reasons],
                    "command": f"/fitglue affected {finding}"})
    async with rt.sessions() as session:
        received = (await session.execute(select(func.count()).select_from(WebhookEvent)
                                          .where(WebhookEvent.received_at >= start))).scalar_one()
        processed = (await session.execute(select(func.count()).select_from(WebhookEvent).where(
            WebhookEvent.state == PROCESSED, WebhookEvent.processed_at >= start))).scalar_one()
        oldest = (await session.execute(select(func.min(WebhookEvent.received_at))
                                        .where(WebhookEvent.state == NEW))).scalar()
        actions = (await session.execute(select(AuditEntry.action, func.count()).where(AuditEntry.at >= start)
                                         .group_by(AuditEntry.action).order_by(func.count().desc()))).all()
        peaks = json.loads(await get_value(session, PEAKS_KEY) or "{}")
    return {"day": now.date().isoformat(), "from": iso_utc(start), "to": iso_utc(now), "new": new,
            "budget_peaks": dict(sorted((peaks.get("peaks") or {}).items())),
            "webhooks": {"received": received, "processed": processed,
                         "oldest_waiting": iso_utc(oldest) if oldest else None},
            "agent_actions": {"count": sum(n for _, n in actions), "top": [[a, n] for a, n in actions[:3]]}}


async def _claim(rt: Runtime, day: str) -> bool:
    """Move the last digest day to `day` unless it is there already; whether this caller did."""
    now = rt.clock.now()
    async with rt.write() as session:
        insert = insert_for(session)(AppState).values(key=LAST_DAY_KEY, value=day, updated_at=now)
        claimed = await session.execute(insert.on_conflict_do_update(
            index_elements=["key"], set_={"value": day, "updated_at": now}, where=AppState.value < day)
            .returning(AppState.key))
        return claimed.first() is not None


async def digest_check(rt: Runtime) -> bool:
    """Sample the budgets; post today's digest when it is due and nobody has. Whether it posted."""
    await sample_budget_peaks(rt)
    channel, courier = rt.settings.alert_channel, rt.courier
    now = rt.clock.now()
    if not channel or courier is None or now.hour < rt.settings.digest_hour_utc:
        return False
    day = now.date().isoformat()
    if not await _claim(rt, day):
        return False
    try:
        await courier.post_digest(channel, await gather_digest(rt, now))
    except Exception as exc:  # noqa: BLE001 - the next check tries again
        log.warning("the daily digest could not be posted (%s: %s); will try again", type(exc).__name__,
                    str(exc)[:200])
        async with rt.write() as session:
            await set_value(session, LAST_DAY_KEY, (now.date() - timedelta(days=1)).isoformat(), now)
        return False
    async with rt.write() as session:  # the next digest's peaks start now
        await set_value(session, PEAKS_KEY, json.dumps({"since": iso_utc(now), "peaks": {}}), now)
    return True
