"""Strava rate limits: window arithmetic (`windows`) and the shared, database-backed ledger."""

from service.ratelimit.ledger import BudgetExhausted, BudgetState, RateLimitLedger, is_counted
from service.ratelimit.windows import BUDGETS, OVERALL, READ, BudgetReading, parse_pair, read_headers

__all__ = [
    "BUDGETS",
    "OVERALL",
    "READ",
    "BudgetExhausted",
    "BudgetReading",
    "BudgetState",
    "RateLimitLedger",
    "is_counted",
    "parse_pair",
    "read_headers",
]
