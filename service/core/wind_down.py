"""Ending background tasks at shutdown: every task is awaited before what it uses is closed.

Why a task must not be left running when its runtime closes: it would unwind later, after the
database pool is disposed, or during `asyncio.run`'s final cancellation. SQLAlchemy then
terminates the connection it held (a shielded graceful close, then a forced stop). With aiosqlite
0.22 the two race, and the graceful close can wait forever for a worker thread that has already
stopped. The process then never exits: SIGTERM ended in SIGKILL (the CI failure of stop 17).
APScheduler 3's `shutdown(wait=False)` is one way to get there: it cancels its jobs in flight
without awaiting them (`AsyncIOExecutor.shutdown`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection
from typing import Any

log = logging.getLogger(__name__)


async def wind_down(tasks: Collection[asyncio.Future[Any]], grace_s: float, what: str, *,
                    cut_short: bool = False) -> None:
    """Let `tasks` finish within `grace_s` seconds, then cancel the rest and give them `grace_s`
    more to unwind. With `cut_short`, cancel at once (their clean-up still gets `grace_s`).

    `tasks` may be a live collection (`Runtime`'s held tasks): a task added to it meanwhile (the
    Slack listener a dispatch being waited for starts) is waited for too, within the same bound.

    Never raises: the tasks' own exceptions are retrieved (each owner logs its own). Whatever still
    runs after that is named in one WARNING and left behind, so a stuck task delays the shutdown
    by at most 2 × `grace_s` and does not stop it.
    """
    loop = asyncio.get_running_loop()
    seen: set[asyncio.Future[Any]] = set()
    cancelled: set[asyncio.Future[Any]] = set()

    async def wait(for_s: float, cancel: bool) -> set[asyncio.Future[Any]]:
        until = loop.time() + for_s
        while True:
            seen.update(tasks)  # a live collection drops the tasks that are done: remember them
            pending = {task for task in seen if not task.done()}
            if cancel:
                for task in pending - cancelled:  # once: cancelling again would cut its clean-up short
                    task.cancel()
                cancelled.update(pending)
            left = until - loop.time()
            if not pending or left <= 0:
                return pending
            # Woken by each task that ends, to look again for tasks added meanwhile.
            await asyncio.wait(pending, timeout=left, return_when=asyncio.FIRST_COMPLETED)

    if not cut_short:
        await wait(grace_s, cancel=False)
    pending = await wait(grace_s, cancel=True)
    for task in seen:
        if task.done() and not task.cancelled():
            task.exception()  # retrieved, so asyncio does not report it again at exit
    if pending:
        log.warning("%d %s still running %g s after being cancelled at shutdown; left behind",
                    len(pending), what, grace_s)
