"""Builds the Runtime from Settings (the database engine, the HTTP session, the Strava client and the
shared rate-limit ledger installed as its hooks) and brings the database schema up to date: the one
place those parts are put together, for the command line, tests and benchmarks."""

from __future__ import annotations

import asyncio

import aiohttp
from sqlalchemy.ext.asyncio import AsyncEngine

from service.core.clock import Clock, SystemClock
from service.core.crypto import Signer, TokenCipher
from service.core.metrics import Metrics
from service.core.runtime import Runtime
from service.core.settings import Settings
from service.db.engine import is_sqlite, make_engine, make_sessionmaker, sqlite_workers_settled
from service.db.migrate import StorageError, upgrade_to_head
from service.ratelimit import RateLimitLedger
from service.strava import StravaClient, StravaHooks


async def open_runtime(
    settings: Settings,
    clock: Clock | None = None,
    *,
    hooks: StravaHooks | None = None,
    engine: AsyncEngine | None = None,
    metrics: Metrics | None = None,
) -> Runtime:
    """`metrics`: counters shared with another runtime of this process (the one-process serve's
    background thread counts into the web's, so /metrics shows both)."""
    settings.require("FITGLUE_SECRET_KEY")
    assert settings.secret_key is not None
    secret_key = settings.secret_key.get_secret_value()
    previous_keys = tuple(key.get_secret_value() for key in settings.previous_secret_keys)
    clock = clock or SystemClock()
    engine = engine or make_engine(settings.database_url)
    http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100))
    strava = None
    if settings.strava_configured:
        assert settings.strava_client_id and settings.strava_client_secret
        strava = StravaClient(
            http,
            oauth_url=settings.strava_oauth_url,
            api_url=settings.strava_api_url,
            client_id=settings.strava_client_id,
            client_secret=settings.strava_client_secret.get_secret_value(),
            clock=clock,
            hooks=hooks,
        )
    rt = Runtime(
        settings=settings,
        clock=clock,
        engine=engine,
        sessions=make_sessionmaker(engine),
        http=http,
        cipher=TokenCipher(secret_key, previous_keys),
        link_signer=Signer(secret_key, previous_keys, purpose="connect-link"),
        strava=strava,
        write_lock=asyncio.Lock() if is_sqlite(settings.database_url) else None,
        metrics=metrics or Metrics(),
    )
    # The one place the rate-limit ledger becomes the Strava client's hooks (unless a caller,
    # e.g. a test, brings its own).
    rt.ledger = RateLimitLedger(rt.sessions, clock, settings.rate_limit_reserve_pct, rt.metrics, write=rt.write)
    if strava is not None and hooks is None:
        strava.hooks = rt.ledger
    return rt


async def upgrade_database(database_url: str) -> None:
    """Apply pending migrations to the database at `database_url` (under the migration lock).
    Raises StorageError when the storage cannot be written."""
    engine = make_engine(database_url)
    try:
        await upgrade_to_head(engine)
    finally:
        await engine.dispose()


__all__ = ["StorageError", "open_runtime", "sqlite_workers_settled", "upgrade_database", "upgrade_to_head"]
