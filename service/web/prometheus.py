"""`GET /metrics`: Prometheus text. Counters are this process's; queue depth and rate-limit usage
are read from the database, so every replica reports the same shared figures. No personal data in
labels: only fixed words (states, budgets, windows, outcomes)."""

from __future__ import annotations

from aiohttp import web

from service.core.metrics import gauge
from service.desk.vitals import queue_figures
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
