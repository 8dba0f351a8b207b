"""Everything a request, a job or a CLI command needs, built once from Settings."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import aiohttp
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from service.core.clock import Clock
from service.core.crypto import Signer, TokenCipher
from service.core.metrics import Metrics
from service.core.settings import ConfigError, Settings
from service.core.wind_down import wind_down

if TYPE_CHECKING:  # built by service.app.bootstrap; the core only names them
    from service.ratelimit import RateLimitLedger
    from service.strava import StravaClient


_Part = TypeVar("_Part")


class AlertSink(Protocol):
    """Where the service reports incidents: `LogAlerts`, or `service.core.incidents.IncidentAlerts`
    posting through the Slack bot's poster (the service never imports the bot)."""

    async def alert(self, kind: str, message: str) -> None: ...


class Courier(Protocol):
    """Slack work the queue worker hands over (the bot implements it; unset when the bot is off)."""

    async def run_bulk_links(self, run_id: int) -> None: ...

    async def post_digest(self, channel: str, digest: dict[str, Any]) -> None: ...


class LogAlerts:
    async def alert(self, kind: str, message: str) -> None:
        logging.getLogger("fitglue.alerts").warning("alert %s: %s", kind, message)


@dataclass
class Runtime:
    settings: Settings
    clock: Clock
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    http: aiohttp.ClientSession
    cipher: TokenCipher
    link_signer: Signer
    strava: StravaClient | None
    alerts: AlertSink = field(default_factory=LogAlerts)
    metrics: Metrics = field(default_factory=Metrics)
    courier: Courier | None = None
    # The shared rate-limit ledger, installed as the Strava client's hooks by open_runtime.
    ledger: RateLimitLedger | None = None
    # Called with the athlete id after every successful Connect (e.g. "ensure the webhook exists").
    on_connected: list[Callable[[int | None], Awaitable[None]]] = field(default_factory=list)
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    # State that belongs to this runtime and to nothing wider (e.g. the desk's cached subscription
    # look): one object per kind, made on first use by `part`. Module globals keyed by runtime would
    # outlive it or leak between tests.
    _parts: dict[Callable[..., object], object] = field(default_factory=dict)
    # SQLite only: writers in this process queue here instead of spinning in SQLite's busy
    # handler, which sleeps up to 100 ms per retry and wrecks throughput under concurrency.
    write_lock: asyncio.Lock | None = None

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A session inside one short write transaction (committed on success)."""
        if self.write_lock is None:
            async with self.sessions() as session, session.begin():
                yield session
            return
        async with self.write_lock, self.sessions() as session, session.begin():
            yield session

    def part(self, kind: Callable[[Runtime], _Part]) -> _Part:
        """This runtime's one instance of `kind` (a class taking the runtime), made on first use."""
        found = self._parts.get(kind)
        if found is None:
            found = self._parts[kind] = kind(self)
        return found  # type: ignore[return-value]

    def spawn(self, coro: Awaitable[None]) -> None:
        """Run work in the background, keeping a reference and logging its failure."""

        async def guarded() -> None:
            try:
                await coro
            except Exception:
                logging.getLogger(__name__).exception("background task failed")

        self.keep(asyncio.ensure_future(guarded()))

    def keep(self, task: asyncio.Task[Any]) -> None:
        """Hold `task` until it is done; `close` waits for it before closing what it uses."""
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def require_strava(self) -> StravaClient:
        if self.strava is None:
            raise ConfigError(
                "Strava is not configured: set STRAVA_CLIENT_ID and STRAVA_CLIENT_SECRET",
                ["STRAVA_CLIENT_ID", "STRAVA_CLIENT_SECRET"],
            )
        return self.strava

    async def close(self) -> None:
        """Wait for the tasks it holds (`spawn`, `keep`; up to FITGLUE_SHUTDOWN_GRACE_S, then they are
        cancelled; tasks they start meanwhile included), then close the HTTP session and the database pool."""
        await wind_down(self._tasks, self.settings.shutdown_grace_s, "background task(s)")
        await self.http.close()
        await self.engine.dispose()
