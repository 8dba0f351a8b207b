"""The rate-limit report (`fitglue ratelimit`, `/fitglue ratelimit`, `GET /admin/api/rate-limit`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from service.ratelimit.ledger import BudgetState
from service.ratelimit.windows import next_midnight, next_quarter
from troubleshooting.vocabulary import BUDGETS, Budget, Window


@dataclass(frozen=True)
class WindowUsage:
    limit: int
    usage: int | None  # None: Strava reported nothing yet in this window
    resets_at: datetime

    @property
    def share(self) -> float:
        return (self.usage or 0) / self.limit if self.limit else 1.0


@dataclass(frozen=True)
class RateLimitReport:
    budgets: dict[Budget, dict[Window, WindowUsage]]
    observed_at: datetime | None
    queued_jobs: int


def build_report(states: dict[Budget, BudgetState], now: datetime, queued_jobs: int) -> RateLimitReport:
    budgets = {}
    for budget in BUDGETS:
        state = states[budget]
        budgets[budget] = {Window.FIFTEEN_MIN: WindowUsage(state.limit_15min, state.usage_15min, next_quarter(now)),
                           Window.DAILY: WindowUsage(state.limit_daily, state.usage_daily, next_midnight(now))}
    seen = [s.observed_at for s in states.values() if s.observed_at is not None]
    return RateLimitReport(budgets, max(seen) if seen else None, queued_jobs)
