"""Socket Mode at shutdown: a command still in the bot's access check when the service stops is
finished before the database pool closes (tests/bot/test_shutdown.py has the same over HTTP)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from bot import slash
from bot.render.notices import help_message
from sandbox_slack import AGENT, SUPPORT_CHANNEL, LocalSlack
from service.desk.support_desk import SupportDesk
from tests.sandbox_slack.conftest import APP_TOKEN, BOT_TOKEN, _serve
from tests.sandbox_slack.test_socket_mode import wait_until


async def test_closing_waits_for_a_socket_mode_command_still_in_its_access_check(database_url: str, standin: Any,
                                                                              clock: Any, monkeypatch) -> None:
    checking, checked, finished = asyncio.Event(), asyncio.Event(), asyncio.Event()
    record_request = SupportDesk.record_request

    async def slow_record(self: SupportDesk, *args: Any) -> None:
        checking.set()
        await asyncio.sleep(0.3)  # the access check's audit entry, on a busy database
        await record_request(self, *args)
        checked.set()

    async def slow_run(*args: Any) -> Any:
        await asyncio.sleep(0.3)  # a diagnosis reading the database
        finished.set()
        return help_message(None)

    monkeypatch.setattr(SupportDesk, "record_request", slow_record)
    monkeypatch.setattr(slash, "run", slow_run)
    slack = LocalSlack(bot_token=BOT_TOKEN, app_token=APP_TOKEN, reply_wait_s=10)
    serving = _serve(slack, database_url, standin, clock, slack_app_token=APP_TOKEN)
    _slack, _rt = await serving.__anext__()
    await wait_until(lambda: slack.hub.connected)
    sent = asyncio.ensure_future(slack.relay.command(AGENT, "diagnose alice@example.com", SUPPORT_CHANNEL))
    await asyncio.wait_for(checking.wait(), 5)
    # SIGTERM, as `fitglue serve` stops: the HTTP server (the Socket Mode connection with it), the runtime.
    with contextlib.suppress(StopAsyncIteration):
        await serving.__anext__()
    # Before: slack_sdk runs each Socket Mode message in a task nothing holds, so the access check
    # and the listener it starts went on after the runtime had closed the pool under them.
    assert checked.is_set() and finished.is_set()
    await asyncio.gather(sent, return_exceptions=True)
