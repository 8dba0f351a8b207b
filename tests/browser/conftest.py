"""The sandbox the browser tests drive: `fitglue serve --sandbox` in a subprocess."""

from __future__ import annotations

import pytest

from tests.browser.chromium import running_sandbox


@pytest.fixture
async def sandbox(tmp_path):
    async with running_sandbox(tmp_path) as running:
        yield running
