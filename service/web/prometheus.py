"""`GET /metrics`: Prometheus text. Counters are this process's; queue depth and rate-limit usage
are read from the database, so every replica reports the same shared figures. No personal data in
labels: only fixed words (states, budgets, windows, outcomes)."""

from __future__ import annotations

from aiohttp import web

from service.core.metrics import gauge
from service.core.runtime import Runtime
from service.desk.vitals import outbound_figures, queue_figures
from service.web.keys import RUNTIME
from troubleshooting.vocabulary import Window


async def metrics(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    lines = rt.metrics.render_counters()
    queue = await queue_figures(rt)
    lines += gauge("fitglue_jobs", "Jobs in the retry queue by state",
                   [({"state": state}, n) for state, n in queue.jobs_by_state.items()])
    lines += gauge("fitglue_jobs_waiting_for_rate_limit", "Queued jobs waiting for a rate-limit window",
                   [({}, queue.waiting_for_rate_limit)])
    lines += await _outbound_gauges(rt)
    if rt.ledger is not None:
        states = await rt.ledger.snapshot()
        usage, limits = [], []
        for budget, state in states.items():
            for window, used, counted, limit in ((Window.FIFTEEN_MIN, state.usage_15min, state.counted_15min, state.limit_15min),
                                                 (Window.DAILY, state.usage_daily, state.counted_daily, state.limit_daily)):
                labels = {"budget": budget, "window": window}
                usage.append((labels, max(used or 0, counted)))
                limits.append((labels, limit))
        lines += gauge("fitglue_strava_rate_limit_usage",
                       "Strava calls used in the current window (the larger of Strava's figure and our count)", usage)
        lines += gauge("fitglue_strava_rate_limit_limit", "Strava's limit for the window", limits)
    return web.Response(text="\n".join(lines) + "\n", content_type="text/plain", charset="utf-8",
                        headers={"Cache-Control": "no-store"})


async def _outbound_gauges(rt: Runtime) -> list[str]:
    """The outbound events' health, shared by every replica (read from the outbox)."""
    now = rt.clock.now()
    health = await outbound_figures(rt)
    oldest = health.oldest_pending_age_s(now)
    last = health.last_delivered_at.timestamp() if health.last_delivered_at is not None else 0
    return [
        *gauge("fitglue_outbound_events", "Outbound events for FitGlue's other services by state (pending, failed)",
               [({"state": "pending"}, health.pending), ({"state": "failed"}, health.failed)]),
        *gauge("fitglue_outbound_oldest_pending_age_seconds", "Age of the oldest pending outbound event (0: none)",
               [({}, oldest or 0)]),
        *gauge("fitglue_outbound_last_success_timestamp_seconds",
               "Unix time of the last delivered outbound event (0: never)", [({}, last)]),
    ]

