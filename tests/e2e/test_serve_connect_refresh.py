"""The real `fitglue serve` process against the Strava stand-in:
link -> page -> authorize -> callback -> scheduled refresh -> revocation -> needs_reauth."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time

import aiohttp
import pytest
from yarl import URL

from service.core.clock import SystemClock
from standin import StandinConfig, start_standin
from standin.testing import authorize_form
from tests.e2e.procs import ServeProcess, base_env, fitglue, free_port
from tests.flows import form_fields

pytestmark = pytest.mark.e2e


def connection_row(db_path):
    with sqlite3.connect(db_path) as db:
        db.row_factory = sqlite3.Row
        return db.execute("SELECT * FROM strava_connections").fetchone()


async def wait_for(predicate, timeout=20.0, interval=0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        await asyncio.sleep(interval)
    raise AssertionError("condition not met in time")


def test_serve_without_strava_credentials_exits_2_naming_them(tmp_path):
    env = base_env(FITGLUE_SECRET_KEY="k" * 32, STRAVA_WEBHOOK_VERIFY_TOKEN="v")
    result = fitglue(["serve", "--port", str(free_port())], env, tmp_path, timeout=30)
    assert result.returncode == 2
    assert "STRAVA_CLIENT_ID" in result.stderr and "STRAVA_CLIENT_SECRET" in result.stderr


def test_sandbox_refuses_real_credentials(tmp_path):
    env = base_env(STRAVA_CLIENT_ID="123", STRAVA_CLIENT_SECRET="abc")
    result = fitglue(["serve", "--sandbox", "--port", str(free_port())], env, tmp_path, timeout=30)
    assert result.returncode == 2 and "--sandbox" in result.stderr


async def test_connect_refresh_revoke_end_to_end(tmp_path):
    standin, runner, base = await start_standin("127.0.0.1", 0, config=StandinConfig(), clock=SystemClock())
    port = free_port()
    db_path = tmp_path / "fitglue.db"
    env = base_env(
        FITGLUE_DATABASE_URL=f"sqlite+aiosqlite:///{db_path}",
        FITGLUE_SECRET_KEY="e2e-secret-key-0123456789",
        FITGLUE_PUBLIC_URL=f"http://127.0.0.1:{port}",
        STRAVA_CLIENT_ID=standin.config.client_id,
        STRAVA_CLIENT_SECRET=standin.config.client_secret,
        STRAVA_WEBHOOK_VERIFY_TOKEN="e2e-verify",
        STRAVA_OAUTH_URL=f"{base}/oauth",
        STRAVA_API_URL=f"{base}/api/v3",
        FITGLUE_REFRESH_INTERVAL_S="1",
        FITGLUE_REFRESH_MARGIN_S="86400",  # every fresh 6-hour token is immediately "due"
        FITGLUE_LOG_LEVEL="DEBUG",
    )
    server = ServeProcess(env, tmp_path, port)
    try:
        await server.wait_ready()
        linked = fitglue(["link", "runner@example.com", "--json"], env, tmp_path)
        assert linked.returncode == 0, linked.stderr
        link = json.loads(linked.stdout)
        assert link["url"].startswith(f"http://127.0.0.1:{port}/connect/strava?t=")
        assert link["expires_at"].endswith("Z")

        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
            async with browser.get(link["url"]) as page:
                html = await page.text()
                assert page.status == 200 and "runner@example.com" in html
            async with browser.post(f"{server.url}/connect/strava/authorize", data=form_fields(html),
                                    allow_redirects=False) as press:
                authorize = URL(press.headers["Location"])
            async with browser.get(authorize) as consent:
                assert consent.status == 200  # the stand-in's consent page
            form = authorize_form(dict(authorize.query))
            async with browser.post(authorize.with_query(None), data=form) as result:
                assert result.status == 200 and "Connected" in await result.text()

        connected = connection_row(db_path)
        assert connected["status"] == "connected"
        # the scheduler refreshes without any command
        # (the refresh call lands at the stand-in a moment before its result is stored)
        await wait_for(lambda: connection_row(db_path)["last_refresh_at"] is not None)
        assert standin.count_calls("POST", "/oauth/token") >= 2  # the exchange, then a refresh

        standin.revoke_athlete(connected["athlete_id"])
        # The Connect registered the push subscription, so Strava's deauthorization event arrives
        # and, once a refresh confirms it, the connection is revoked (a sweep that meets the dead
        # grant first makes it needs_reauth on the way).
        row = await wait_for(lambda: (r := connection_row(db_path))["status"] == "revoked" and r)
        assert row["revoked_at"] is not None
        assert row["access_token_enc"] is None and row["refresh_token_enc"] is None
    finally:
        code = await server.stopped()
        await runner.cleanup()
    assert code == 0, server.output()

    # no Strava token anywhere in the logs, CLI output or the raw database files
    logs = server.output()
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("fitglue.db*"))
    for token in standin.issued_tokens:
        assert token not in logs and token not in linked.stdout
        assert token.encode() not in raw
    assert standin.config.client_secret not in logs
