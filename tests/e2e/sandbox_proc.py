"""Running `fitglue serve --sandbox` as a subprocess and reading what it announces."""

from __future__ import annotations

import asyncio
import shlex
import time
from pathlib import Path

import aiohttp
from yarl import URL

from service.app.sandbox.front_page import read_banner
from standin.testing import authorize_form
from tests.e2e.procs import ServeProcess, base_env, free_port
from tests.flows import form_fields


def sandbox_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A clean environment whose temporary directory is the test's own (the sandbox's folder goes there)."""
    temp = tmp_path / "tmp"
    temp.mkdir(exist_ok=True)
    return base_env(TMPDIR=str(temp), **extra)


def sandbox_folders(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "tmp").glob("fitglue-sandbox-*"))


def exported(line: str) -> dict[str, str]:
    """`export A=1 B='x y'` -> {"A": "1", "B": "x y"}."""
    words = shlex.split(line)
    assert words[0] == "export", line
    return dict(word.split("=", 1) for word in words[1:])


class SandboxProcess(ServeProcess):
    def __init__(self, env: dict[str, str], cwd: Path, *args: str) -> None:
        super().__init__(env, cwd, free_port(), ("--sandbox", *args) if "--sandbox-dir" not in args else args)

    async def announced(self, timeout: float = 30) -> dict[str, str]:
        """Wait for the banner; its lines by label ("Connect link", "source", "export", …)."""
        await self.wait_ready(timeout)
        deadline = time.monotonic() + timeout
        while "  or: export " not in self.output():
            assert time.monotonic() < deadline, self.output()
            await asyncio.sleep(0.1)
        return read_banner(self.output())


async def connect_in_browser(link: str) -> str:
    """The whole Connect flow as a browser does it; the result page's HTML."""
    base = str(URL(link).origin())  # the cookie is the public URL's host's (localhost, not 127.0.0.1)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
        async with browser.get(link) as page:
            html = await page.text()
        async with browser.post(f"{base}/connect/strava/authorize", data=form_fields(html),
                                headers={"Sec-Fetch-Site": "same-origin"}, allow_redirects=False) as press:
            authorize = URL(press.headers["Location"])
        form = authorize_form(dict(authorize.query))
        async with browser.post(authorize.with_query(None), data=form) as result:
            assert result.status == 200, await result.text()
            return await result.text()
