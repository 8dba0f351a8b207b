"""A slash command still being worked on when the service stops is finished before the database
pool closes: Bolt runs it in a task nothing awaits, and the runtime holds that task
(bot.app.held_by; tests/integration/test_shutdown.py has the rest of this kind)."""

from __future__ import annotations

import asyncio
from typing import Any

from bot import slash
from bot.render.notices import help_message
from tests.bot.conftest import Signed


async def test_closing_the_runtime_waits_for_a_slash_command_in_flight(signed: Signed, bot_runtime,
                                                                      monkeypatch) -> None:
    started, finished = asyncio.Event(), asyncio.Event()

    async def slow_run(*args: Any) -> Any:
        started.set()
        await asyncio.sleep(0.2)  # a diagnosis reading the database
        finished.set()
        return help_message(None)

    monkeypatch.setattr(slash, "run", slow_run)
    response, _elapsed = await signed.command("diagnose alice@example.com")
    assert response.status == 200
    await asyncio.wait_for(started.wait(), 5)
    assert not finished.is_set()
    await bot_runtime.close()
    # Before: close() knew nothing of Bolt's task and closed the pool under it.
    assert finished.is_set()
