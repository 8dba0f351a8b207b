"""`fitglue ratelimit [--json]`."""

from __future__ import annotations

import argparse

from service.app.cli.output import EXIT_OK, emit, run_with_desk
from service.core.clock import iso_utc
from service.core.runtime import Runtime
from service.desk.api_models import RateLimitBody
from service.desk.support_desk import SupportDesk
from troubleshooting.vocabulary import Budget

BUDGET_NAMES = {Budget.OVERALL: "overall (all calls)", Budget.READ: "read (non-upload)"}


def cmd_ratelimit(args: argparse.Namespace) -> int:
    async def body(desk: SupportDesk, rt: Runtime) -> int:
        report = await desk.webhooks.rate_limit_report()
        lines = []
        for budget, windows in report.budgets.items():
            for window, usage in windows.items():
                used = "no calls seen this window" if usage.usage is None else \
                    f"{usage.usage}/{usage.limit} ({usage.share:.0%})"
                resets = usage.resets_at.strftime("%Y-%m-%dT%H:%M:%SZ")
                lines.append(f"{BUDGET_NAMES[budget]:<22} {window:<6} {used:<28} limit {usage.limit}, resets {resets}")
        observed = iso_utc(report.observed_at) or "never"
        lines.append(f"last Strava response: {observed}; jobs waiting in the queue: {report.queued_jobs}")
        emit(RateLimitBody.of(report).to_json(), args.json, "\n".join(lines))
        return EXIT_OK

    return run_with_desk(args, body)


def register(sub: argparse._SubParsersAction) -> None:
    ratelimit = sub.add_parser("ratelimit", help="Strava API usage against the limits, reset times, queued work")
    ratelimit.add_argument("--json", action="store_true")
    ratelimit.set_defaults(handler=cmd_ratelimit)
