"""Debian's Chromium through Playwright (never a downloaded browser build), for every browser test;
and a sandbox started as a subprocess, for the tests that drive one."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"
needs_chromium = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")


@asynccontextmanager
async def chromium_page(viewport: dict[str, int]) -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        context = await browser.new_context(viewport=viewport, device_scale_factor=1)
        yield await context.new_page()
        await browser.close()


async def save_screenshot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


@asynccontextmanager
async def running_sandbox(tmp_path: Path) -> AsyncIterator[Any]:
    """`fitglue serve --sandbox` in a subprocess; `.shown` is its banner, `.client` drives it."""
    from tests.e2e.sandbox_client import SandboxClient
    from tests.e2e.sandbox_proc import SandboxProcess, sandbox_env

    running = SandboxProcess(sandbox_env(tmp_path), tmp_path)
    try:
        running.shown = await running.announced()
        running.client = SandboxClient(running.shown)
        yield running
    finally:
        running.stop()
