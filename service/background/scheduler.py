"""APScheduler wiring. Sweeps are safe to run on every replica at once (leases), so no leader election."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from service.background.alert_checks import ALERT_CHECK_INTERVAL_S, check_alerts
from service.background.digest import digest_check
from service.background.retention import sweep
from service.connections.refresh import sweep_due
from service.core.runtime import Runtime
from service.core.wind_down import wind_down

log = logging.getLogger(__name__)

# The first round of every job waits this long after start, so a starting process serves first.
FIRST_RUN_AFTER_S = 2.0


async def refresh_sweep(rt: Runtime) -> None:
    results = await sweep_due(rt)
    if results:
        failed = sum(1 for r in results if r.failed)
        log.info("refresh sweep: %d refreshed, %d failed", len(results) - failed, failed)


async def retention_sweep(rt: Runtime) -> None:
    deleted = await sweep(rt)
    if deleted:
        log.info("retention: deleted %s", ", ".join(f"{n} from {table}" for table, n in deleted.items()))


def periodic_jobs(rt: Runtime) -> list[tuple[str, Callable[[Runtime], Awaitable[None]], int]]:
    """(name, coroutine function, interval seconds) for everything the scheduler runs."""
    return [("refresh_sweep", refresh_sweep, rt.settings.refresh_interval_s),
            ("retention_sweep", retention_sweep, rt.settings.retention_interval_s),
            ("alert_checks", check_alerts, ALERT_CHECK_INTERVAL_S),
            ("daily_digest", _digest, rt.settings.digest_check_s)]


async def _digest(rt: Runtime) -> None:
    await digest_check(rt)


def _ends_quietly_on_shutdown(name: str, func: Callable[[Runtime], Awaitable[None]],
                              running: set[asyncio.Task[Any]]) -> Callable[[Runtime], Awaitable[None]]:
    """A periodic job cut short by SIGTERM is expected, not an error to print a traceback for.
    While it runs, its task is in `running`, for `run_scheduler` to wait on."""

    async def run(rt: Runtime) -> None:
        task = asyncio.current_task()
        if task is not None:
            running.add(task)
        try:
            await func(rt)
        except asyncio.CancelledError:
            # Its leases expire by themselves (refresh.LEASE, the queue's job lease).
            log.info("%s cut short by shutdown", name)
        finally:
            running.discard(task)  # type: ignore[arg-type]

    return run


@asynccontextmanager
async def run_scheduler(rt: Runtime, first_run_after_s: float = FIRST_RUN_AFTER_S) -> AsyncIterator[None]:
    """Every periodic job of `periodic_jobs`, from `first_run_after_s` seconds after start until the
    context is left. Leaving it cancels the jobs in flight and waits (up to 2 × FITGLUE_SHUTDOWN_GRACE_S)
    until they have unwound."""
    scheduler = AsyncIOScheduler(timezone=UTC)
    running: set[asyncio.Task[Any]] = set()
    first = datetime.now(UTC) + timedelta(seconds=first_run_after_s)
    for name, func, interval in periodic_jobs(rt):
        scheduler.add_job(_ends_quietly_on_shutdown(name, func, running), "interval", args=[rt], seconds=interval, id=name,
                          next_run_time=first, max_instances=1, coalesce=True, misfire_grace_time=interval)
    scheduler.start()
    try:
        yield
    finally:
        scheduler.shutdown(wait=False)  # cancels the jobs in flight, without waiting for them
        for job in list(scheduler.get_jobs()):
            job.remove()
        # So they have unwound before the runtime they use closes (service.core.wind_down says why).
        await wind_down(list(running), rt.settings.shutdown_grace_s, "scheduled job(s)", cut_short=True)
