"""Strava rate limits: window arithmetic (`windows`), the shared, database-backed ledger and the
report of usage against limits.

May import `service.strava`, `service.core` and `service.db`.
"""

from service.ratelimit.ledger import BudgetExhausted, BudgetState, RateLimitLedger, is_counted
from service.ratelimit.windows import BudgetReading, parse_pair, read_headers

__all__ = [
    "BudgetExhausted",
    "BudgetReading",
    "BudgetState",
    "RateLimitLedger",
    "is_counted",
    "parse_pair",
    "read_headers",
]
