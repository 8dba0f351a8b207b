"""The real service with the bot mounted, a local Slack, and signed requests into /slack/events."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from slack_sdk.signature import SignatureVerifier

from service.app.bootstrap import open_runtime
from service.app.factory import build_app
from service.app.wiring import wire_optional_parts
from service.core.runtime import Runtime
from service.db.migrate import upgrade_to_head
from service.desk.support_desk import SupportDesk
from tests.bot.slack_standin import SlackStandin
from tests.conftest import make_settings
from tests.flows import connect

SIGNING_SECRET = "test-signing-secret-5a1c"
BOT_TOKEN = "xoxb-test-token"
AGENT = "UAGENT1"
GROUP = "SSUPPORT"
GROUP_MEMBER = "UGROUPIE"
OUTSIDER = "UOUTSIDE"
ALERT_CHANNEL = "CALERTS"


@pytest.fixture
async def slack(aiohttp_server: Any) -> AsyncIterator[SlackStandin]:
    standin = SlackStandin(groups={GROUP: [GROUP_MEMBER]})
    server = await aiohttp_server(standin.app())
    standin.base_url = str(server.make_url("")).rstrip("/")
    yield standin
    standin.release()


@pytest.fixture
def slack_overrides(slack: SlackStandin) -> dict[str, Any]:
    return {
        "slack_bot_token": BOT_TOKEN,
        "slack_signing_secret": SIGNING_SECRET,
        "slack_api_url": f"{slack.base_url}/api/",
        "support_slack_ids": (AGENT, GROUP),
        "alert_channel": ALERT_CHANNEL,
    }


@pytest.fixture
async def bot_runtime(database_url: str, standin: Any, clock: Any, slack_overrides: dict[str, Any]
                      ) -> AsyncIterator[Runtime]:
    rt = await open_runtime(make_settings(database_url, standin, **slack_overrides), clock)
    await upgrade_to_head(rt.engine)
    yield rt
    await rt.close()


@dataclass
class Signed:
    """Posts bodies the way Slack does: form-encoded, signed with the signing secret, now."""

    client: Any
    slack: SlackStandin
    secret: str = SIGNING_SECRET

    def headers(self, body: str, timestamp: int | None = None) -> dict[str, str]:
        ts = str(int(time.time()) if timestamp is None else timestamp)
        signature = SignatureVerifier(self.secret).generate_signature(timestamp=ts, body=body)
        return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": signature,
                "Content-Type": "application/x-www-form-urlencoded"}

    async def post(self, body: str, *, content_type: str = "application/x-www-form-urlencoded",
                   headers: dict[str, str] | None = None) -> tuple[Any, float]:
        sent = headers if headers is not None else self.headers(body)
        sent["Content-Type"] = content_type
        started = time.monotonic()
        response = await self.client.post("/slack/events", data=body.encode(), headers=sent)
        await response.read()
        return response, time.monotonic() - started

    def command_body(self, text: str, user: str = AGENT, response: str = "cmd") -> str:
        return urlencode({
            "token": "legacy", "team_id": "T0TEST", "team_domain": "fitglue-test", "channel_id": "C0SUPPORT",
            "channel_name": "support", "user_id": user, "user_name": user.lower(), "command": "/fitglue",
            "text": text, "api_app_id": "A0FITGLUE", "response_url": self.slack.response_url(response),
            "trigger_id": "1.2.3",
        })

    async def command(self, text: str, user: str = AGENT, response: str = "cmd") -> tuple[Any, float]:
        return await self.post(self.command_body(text, user, response))

    def click_body(self, action_id: str, value: str, user: str = AGENT, response: str = "click") -> str:
        payload = {
            "type": "block_actions", "team": {"id": "T0TEST"}, "user": {"id": user},
            "api_app_id": "A0FITGLUE", "token": "legacy", "trigger_id": "1.2.3",
            "container": {"type": "message", "is_ephemeral": True}, "channel": {"id": "C0SUPPORT"},
            "response_url": self.slack.response_url(response),
            "actions": [{"type": "button", "action_id": action_id, "block_id": "fitglue_actions",
                         "value": value, "action_ts": "1.2"}],
        }
        return "payload=" + quote(json.dumps(payload))

    async def click(self, action_id: str, value: str, user: str = AGENT, response: str = "click"
                    ) -> tuple[Any, float]:
        return await self.post(self.click_body(action_id, value, user, response))

    async def event(self, event: dict[str, Any]) -> tuple[Any, float]:
        body = json.dumps({"token": "legacy", "team_id": "T0TEST", "api_app_id": "A0FITGLUE",
                           "type": "event_callback", "event_id": "Ev1", "event_time": int(time.time()),
                           "event": event})
        return await self.post(body, content_type="application/json",
                               headers={**self.headers(body), "Content-Type": "application/json"})


@pytest.fixture
async def service(aiohttp_client: Any, bot_runtime: Runtime) -> Any:
    app = build_app(bot_runtime, background=False)
    await wire_optional_parts(app, bot_runtime)
    return await aiohttp_client(app)


@pytest.fixture
def signed(service: Any, slack: SlackStandin) -> Signed:
    return Signed(service, slack)


async def connected_user(service: Any, rt: Runtime, email: str = "alice@example.com", **decision: Any) -> str:
    """A FitGlue user who went through the whole Connect flow against the Strava stand-in."""
    issued = await SupportDesk(rt).issue_connect_link(email, "test")
    status, html = await connect(service, issued.url, **decision)
    assert status == 200, html
    return email
