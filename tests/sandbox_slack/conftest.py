"""The real service with the bot mounted, talking to the local Slack (sandbox_slack) over HTTP or Socket Mode."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from sandbox_slack import AGENT, ALERTS_CHANNEL, LocalSlack, start_local_slack
from service.app.bootstrap import open_runtime
from service.app.factory import build_app
from service.app.wiring import wire_optional_parts
from service.core.runtime import Runtime
from service.db.migrate import upgrade_to_head
from tests.conftest import make_settings

BOT_TOKEN = "xoxb-sandbox-test"
APP_TOKEN = "xapp-1-sandbox-test"
SIGNING_SECRET = "local-slack-signing-secret"


async def _serve(slack: LocalSlack, database_url: str, standin: Any, clock: Any, **overrides: Any
                 ) -> AsyncIterator[tuple[LocalSlack, Runtime]]:
    runner, base = await start_local_slack(slack)
    settings = make_settings(database_url, standin, slack_bot_token=BOT_TOKEN, slack_api_url=f"{base}/api/",
                             support_slack_ids=(AGENT,), alert_channel=ALERTS_CHANNEL, **overrides)
    rt = await open_runtime(settings, clock)
    await upgrade_to_head(rt.engine)
    app = build_app(rt, background=False)
    await wire_optional_parts(app, rt)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()  # Socket Mode: the bot connects to the local Slack here
    rt.settings = rt.settings.replaced(public_url=str(server.make_url("")).rstrip("/"))
    slack.point_at(str(server.make_url("/slack/events")))
    try:
        yield slack, rt
    finally:
        await server.close()
        await rt.close()
        await runner.cleanup()


@pytest.fixture
async def over_http(database_url: str, standin: Any, clock: Any) -> AsyncIterator[tuple[LocalSlack, Runtime]]:
    slack = LocalSlack(bot_token=BOT_TOKEN, signing_secret=SIGNING_SECRET, reply_wait_s=10)
    async for pair in _serve(slack, database_url, standin, clock, slack_signing_secret=SIGNING_SECRET):
        yield pair


@pytest.fixture
async def over_socket(database_url: str, standin: Any, clock: Any) -> AsyncIterator[tuple[LocalSlack, Runtime]]:
    slack = LocalSlack(bot_token=BOT_TOKEN, app_token=APP_TOKEN, reply_wait_s=10)
    async for pair in _serve(slack, database_url, standin, clock, slack_app_token=APP_TOKEN):
        yield pair
