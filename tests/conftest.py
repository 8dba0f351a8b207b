"""Shared fixtures: a movable clock, a migrated database, a runtime, the Strava stand-in."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from service.app.bootstrap import open_runtime
from service.core.clock import ManualClock
from service.core.runtime import Runtime
from service.core.settings import Settings
from service.db.migrate import upgrade_to_head
from standin import StandinConfig, StravaStandin, start_standin
from tests.dbutil import fresh_database_url

SECRET_KEY = "test-secret-key-0123456789abcdef"
VERIFY_TOKEN = "verify-token-for-tests"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 11, 27, 14, 3, 0, tzinfo=UTC))


@pytest.fixture
async def database_url(tmp_path: Path) -> AsyncIterator[str]:
    async with fresh_database_url(tmp_path) as url:
        yield url


@pytest.fixture
async def standin(clock: ManualClock) -> AsyncIterator[StravaStandin]:
    standin, runner, _base = await start_standin("127.0.0.1", 0, config=StandinConfig(), clock=clock)
    yield standin
    await runner.cleanup()


def make_settings(database_url: str, standin: StravaStandin | None = None, **overrides: object) -> Settings:
    values: dict = {
        "database_url": database_url,
        "secret_key": SECRET_KEY,
        "strava_webhook_verify_token": VERIFY_TOKEN,
        "public_url": "http://localhost:8080",
    }
    if standin is not None:
        values.update(
            strava_client_id=standin.config.client_id,
            strava_client_secret=standin.config.client_secret,
            strava_oauth_url=f"{standin.base_url}/oauth",
            strava_api_url=f"{standin.base_url}/api/v3",
        )
    values.update(overrides)
    return Settings.from_values(**values)


@pytest.fixture
async def runtime(database_url: str, standin: StravaStandin, clock: ManualClock) -> AsyncIterator[Runtime]:
    rt = await open_runtime(make_settings(database_url, standin), clock)
    await upgrade_to_head(rt.engine)
    yield rt
    await rt.close()
