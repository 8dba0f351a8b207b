"""Counting a batch's background Strava calls at once (the queue worker's event batches).

Call by call, the ledger spends two write transactions on every Strava call: one to count it
before, one to record the headers of its answer. A batch of 64 event checks made that 128
transactions, queued on SQLite's one writer, and the worker fell to half its concurrency's worth
(bench/processing_throughput.py). Inside `counted_together(ledger, n)` the batch's n calls are
counted with one conditional UPDATE per budget up front, and the headers of their answers are
recorded once when the batch ends (per budget the highest usage: within a window Strava's usage
only grows). Calls the batch did not make are uncounted again. A 429 is still recorded at once;
interactive calls are never prepaid. When the budget cannot take all n, nothing is prepaid and
each call is counted on its own, as before (near the limit, where that does not cost throughput).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy.exc import SQLAlchemyError

from service.ratelimit.windows import BudgetReading, day_start, quarter_start

if TYPE_CHECKING:
    from service.ratelimit.ledger import RateLimitLedger

log = logging.getLogger(__name__)


@dataclass
class _Prepaid:
    left: int
    readings: dict[str, BudgetReading] = field(default_factory=dict)


# Set for the tasks of one batch (asyncio copies the context into the tasks it starts).
_BATCH: ContextVar[_Prepaid | None] = ContextVar("fitglue_prepaid_strava_calls", default=None)


def take_prepaid(interactive: bool) -> bool:
    """Whether this background call was counted with its batch already (and takes its place)."""
    batch = _BATCH.get()
    if batch is None or interactive or batch.left <= 0:
        return False
    batch.left -= 1
    return True


def keep_for_batch(readings: Mapping[str, BudgetReading]) -> bool:
    """Keep an answer's readings for the batch's one write at its end; False outside a batch."""
    batch = _BATCH.get()
    if batch is None:
        return False
    for budget, reading in readings.items():
        seen = batch.readings.get(budget)
        if seen is None or (reading.usage_daily, reading.usage_15min) > (seen.usage_daily, seen.usage_15min):
            batch.readings[budget] = reading
    return True


@asynccontextmanager
async def counted_together(ledger: RateLimitLedger | None, calls: int) -> AsyncIterator[None]:
    """Count `calls` background calls now and record their answers' headers at the end (see above)."""
    if ledger is None or calls <= 0:
        yield
        return
    now = ledger.clock.now()
    prepaid = 0
    try:
        await ledger.ensure_rows()
        if await ledger.reserve(now, False, calls) is None:
            prepaid = calls
    except SQLAlchemyError:
        log.warning("rate-limit ledger unavailable; counting the batch's calls one by one", exc_info=True)
    batch = _Prepaid(prepaid)
    token = _BATCH.set(batch)
    try:
        yield
    finally:
        _BATCH.reset(token)
        try:
            if batch.left > 0:
                await ledger.give_back(quarter_start(now), day_start(now), batch.left)
            if batch.readings:
                await ledger.observe(ledger.clock.now(), batch.readings, False)
        except SQLAlchemyError:
            log.warning("could not record the batch's Strava rate-limit headers", exc_info=True)
