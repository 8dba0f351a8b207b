"""The process roles (DESIGN.md part 2, "roles"): what each kind of process runs.

- `fitglue serve` (role `all`, the default): HTTP routes, the Slack bot and the webhook intake on
  the main event loop; the background loops (`service.background.loops`: queue worker, scheduler)
  in a `BackgroundThread` with its own event loop, database pool and HTTP session. A burst of
  webhook POSTs and a backlog of processing then never queue behind each other on one event loop:
  Strava's 2 s deadline is the intake's alone (issue 11, "intake comes first").
- `fitglue serve --role web`: HTTP, bot and intake only; stored events wait for a worker.
- `fitglue worker [--health-port P]`: the background loops only, with the Slack Web API client
  when the bot is configured (alerts go out from whichever worker raises them), and optionally
  `/healthz` and `/readyz` on their own port.

Any number of each may run on one PostgreSQL database; on SQLite, one web and one worker (or one
`serve`) on the same machine.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Callable

from aiohttp import web

from service.app.bootstrap import open_runtime, upgrade_to_head
from service.app.factory import intake_hooks
from service.app.wiring import wire_worker_parts
from service.background.loops import LoopHooks, run_background
from service.core.clock import Clock
from service.core.metrics import Metrics
from service.core.runtime import Runtime
from service.core.settings import Settings
from service.web import health
from service.web.keys import RUNTIME

log = logging.getLogger("fitglue.serve")

ALL, WEB = "all", "web"
SERVE_ROLES = (ALL, WEB)
# The background thread's shutdown winds down, one after another, the outbound delivery round, the
# queue worker's jobs and the runtime's tasks, each within 2 × FITGLUE_SHUTDOWN_GRACE_S at most, and
# the scheduler's jobs (cancelled at once) within 1 × (service.core.wind_down); past this the web's
# shutdown goes on without it (the thread is a daemon).
STOP_GRACE_ROUNDS = 7
STOP_MARGIN_S = 5.0


class BackgroundThread:
    """The background loops in a thread of their own, on a runtime of their own (same settings,
    clock and metrics as the web's). `wake()` may be called from the web's thread."""

    def __init__(self, settings: Settings, clock: Clock, metrics: Metrics,
                 yield_to: Callable[[], bool] | None = None) -> None:
        self.settings, self.clock, self.metrics, self.yield_to = settings, clock, metrics, yield_to
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._wake: Callable[[], None] | None = None
        self._thread = threading.Thread(target=self._main, name="fitglue-background", daemon=True)

    def wake(self) -> None:
        if self._wake is not None:
            self._wake()

    async def start(self) -> None:
        """Start the thread and wait until its loops run; raises what stopped them from starting."""
        self._thread.start()
        await asyncio.to_thread(self._ready.wait)
        if self._failure is not None:
            raise self._failure

    async def stop(self) -> None:
        """Stop the loops (jobs in flight finish or are released) and wait for the thread."""
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stop.set)
        await asyncio.to_thread(self._thread.join,
                                STOP_GRACE_ROUNDS * self.settings.shutdown_grace_s + STOP_MARGIN_S)

    def _main(self) -> None:
        try:
            asyncio.run(self._run())
        except BaseException as exc:  # noqa: BLE001 - handed to start(), which raises it in the main thread
            if self._ready.is_set():  # they had started: nobody waits for this, so say it
                log.error("the background loops stopped: %s", type(exc).__name__, exc_info=exc)
            self._failure = exc
        finally:
            self._ready.set()

    async def _run(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        rt = await open_runtime(self.settings, self.clock, metrics=self.metrics)
        try:
            wire_worker_parts(rt)
            hooks = LoopHooks(wake_on=self._keep_wake, yield_to=self.yield_to)
            async with run_background(rt, hooks):
                self._ready.set()
                await self._stop.wait()
        finally:
            await rt.close()

    def _keep_wake(self, wake: Callable[[], None]) -> None:
        self._wake = wake


async def start_in_process_background(app: web.Application, rt: Runtime) -> BackgroundThread:
    """The one-process serve's background thread, woken by the app's intake."""
    hooks = intake_hooks(app)
    background = BackgroundThread(rt.settings, rt.clock, rt.metrics, yield_to=hooks.yield_to)
    await background.start()
    if hooks.wake_on is not None:
        hooks.wake_on(background.wake)
    return background


def app_runner(app: web.Application, settings: Settings) -> web.AppRunner:
    """The runner every role serves HTTP with. On the way out, requests in flight get
    FITGLUE_SHUTDOWN_GRACE_S seconds to finish before they are cancelled (aiohttp's own default is
    60 s), like every other task a stop waits for (service.core.wind_down)."""
    return web.AppRunner(app, access_log=None, shutdown_timeout=settings.shutdown_grace_s)


def build_health_app(rt: Runtime) -> web.Application:
    """`/healthz` and `/readyz` only (a worker's, for an orchestrator)."""
    app = web.Application()
    app[RUNTIME] = rt
    app.router.add_get("/healthz", health.healthz)
    app.router.add_get("/readyz", health.readyz)
    return app


async def run_worker(settings: Settings, health_port: int | None) -> None:
    """`fitglue worker`: migrations (under the lock), then the background loops until SIGTERM/SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    rt = await open_runtime(settings)
    runner: web.AppRunner | None = None
    try:
        await upgrade_to_head(rt.engine)
        wire_worker_parts(rt)
        if health_port is not None:
            runner = app_runner(build_health_app(rt), settings)
            await runner.setup()
            await web.TCPSite(runner, settings.host, health_port).start()
        async with run_background(rt):
            log.info("FitGlue worker running (queue worker, scheduler)%s",
                     f"; health on http://{settings.host}:{health_port}" if health_port is not None else "")
            await stop.wait()
            log.info("shutting down: no new work is taken, work in flight finishes or is released")
    finally:
        if runner is not None:
            await runner.cleanup()
        await rt.close()
