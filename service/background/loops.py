"""The background loops a worker runs, in one list: the place to add one.

Each loop is an async context manager over a Runtime: entered, it runs in the background; left, it
stops cleanly (the queue worker finishes or releases the jobs in flight). `run_background` enters
every loop; it is what `fitglue worker` runs, what the one-process `fitglue serve` runs in its
background thread, and (through `background_contexts`) what `build_app(background=True)` mounts.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

from aiohttp import web

from service.background.job_handlers import make_worker
from service.background.outbound import OutboundDelivery
from service.background.scheduler import run_scheduler
from service.core.runtime import Runtime


@dataclass(frozen=True)
class LoopHooks:
    """What the host lends the loops: `wake_on(wake)` is handed the queue worker's wake-up (the
    intake calls it when it stored an event; safe from another thread), `yield_to()` says whether
    the intake is under a burst (then the worker holds back)."""
    wake_on: Callable[[Callable[[], None]], None] | None = None
    yield_to: Callable[[], bool] | None = None


BackgroundLoop = Callable[[Runtime, LoopHooks], AbstractAsyncContextManager[None]]


@asynccontextmanager
async def queue_worker(rt: Runtime, hooks: LoopHooks) -> AsyncIterator[None]:
    worker = make_worker(rt, yield_to=hooks.yield_to)
    if hooks.wake_on is not None:
        hooks.wake_on(worker.wake)
    worker.start()
    try:
        yield
    finally:
        await worker.stop()


@asynccontextmanager
async def outbound_delivery(rt: Runtime, hooks: LoopHooks) -> AsyncIterator[None]:
    """Sending the outbox's events to FitGlue's other services (`outbound.py`)."""
    delivery = OutboundDelivery(rt)
    delivery.start()
    try:
        yield
    finally:
        await delivery.stop()


@asynccontextmanager
async def scheduler(rt: Runtime, hooks: LoopHooks) -> AsyncIterator[None]:
    async with run_scheduler(rt):
        yield


def background_loops() -> list[BackgroundLoop]:
    """Every loop a worker runs, in the order they start (and the reverse of how they stop)."""
    return [scheduler, queue_worker, outbound_delivery]


@asynccontextmanager
async def run_background(rt: Runtime, hooks: LoopHooks | None = None) -> AsyncIterator[None]:
    async with AsyncExitStack() as stack:
        for loop in background_loops():
            await stack.enter_async_context(loop(rt, hooks or LoopHooks()))
        yield


def background_context(rt: Runtime, hooks: LoopHooks) -> Callable[[web.Application], AsyncIterator[None]]:
    """`run_background` as an aiohttp cleanup context (the loops live as long as the app)."""

    async def context(app: web.Application) -> AsyncIterator[None]:
        async with run_background(rt, hooks):
            yield

    return context
