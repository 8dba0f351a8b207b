"""`fitglue serve --sandbox` with nothing configured hands off to a local event receiver (issue 12):
after a Connect, the stand-in's control page lists the `strava.connection.connected` event with its
Standard Webhooks signature verified."""

from __future__ import annotations

import asyncio
import re
import time

import aiohttp
import pytest
from yarl import URL

from tests.e2e.procs import ServeProcess, base_env, free_port
from tests.flows import decide_at_strava, form_fields

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


async def test_the_sandbox_receives_and_verifies_the_connect_event(tmp_path):
    serve = ServeProcess(base_env(), tmp_path, free_port(), ("--sandbox",))
    try:
        await serve.wait_ready()
        deadline = time.monotonic() + 20
        # The announcement is printed just after the server is ready: wait for it on a busy machine.
        while not re.search(r"connect/strava\?t=\S+\n", output := serve.output()):
            assert time.monotonic() < deadline and serve.proc.poll() is None, output
            await asyncio.sleep(0.1)
        standin = re.search(r"local stand-in at (http://127\.0\.0\.1:\d+)", output).group(1)
        link = re.search(r"(http://\S+/connect/strava\?t=\S+)", output).group(1)
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            async with http.get(link) as page:
                fields = form_fields(await page.text())
            async with http.post(str(URL(link).with_path("/connect/strava/authorize").with_query(None)), data=fields,
                                 allow_redirects=False) as pressed:
                authorize = pressed.headers["Location"]
            query = await decide_at_strava(authorize)
            async with http.get(str(URL(link).with_path("/oauth/strava/callback").with_query(query))) as callback:
                assert callback.status == 200, await callback.text()
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                async with http.get(standin + "/") as index:
                    html = await index.text()
                if "strava.connection.connected" in html:
                    break
                await asyncio.sleep(0.2)
        assert "strava.connection.connected" in html, html
        assert "verified" in html and "NOT verified" not in html
    finally:
        assert await serve.stopped() == 0, serve.output()
