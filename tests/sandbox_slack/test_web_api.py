"""The local Slack's Web API and response URLs answer as Slack does, and keep what the bot sent."""

from __future__ import annotations

from typing import Any

import pytest

from sandbox_slack import AGENT, SUPPORT_CHANNEL, LocalSlack
from sandbox_slack.workspace import Workspace

TOKEN = "xoxb-local"


@pytest.fixture
async def api(aiohttp_client: Any) -> Any:
    slack = LocalSlack(bot_token=TOKEN, app_token="xapp-local")
    client = await aiohttp_client(slack.build_app())
    slack.base_url = str(client.make_url("")).rstrip("/")  # as start_local_slack sets it
    client.slack = slack
    return client


async def call(api: Any, method: str, token: str | None = TOKEN, **body: Any) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    answer = await api.post(f"/api/{method}", json=body, headers=headers)
    assert answer.status == 200
    return await answer.json()


async def test_tokens_are_checked(api):
    assert (await call(api, "auth.test", token=None))["error"] == "not_authed"
    assert (await call(api, "auth.test", token="xoxb-wrong"))["error"] == "invalid_auth"
    assert (await call(api, "apps.connections.open"))["error"] == "invalid_auth"  # needs the app-level token
    assert (await call(api, "apps.connections.open", token="xapp-local"))["url"].startswith("ws://127.0.0.1:")
    assert (await call(api, "no.such.method"))["error"] == "unknown_method"


async def test_the_methods_the_bot_uses(api):
    member = await call(api, "users.lookupByEmail", email="Sandbox-Athlete@example.com")
    assert member["ok"] and member["user"]["id"] == "U0SANDYATH"
    assert (await call(api, "users.lookupByEmail", email="nobody@example.com"))["error"] == "users_not_found"
    dm = (await call(api, "conversations.open", users="U0SANDYATH"))["channel"]["id"]
    posted = await call(api, "chat.postMessage", channel=dm, text="hi", blocks=[{"type": "divider"}])
    assert posted["ok"] and api.slack.workspace.visible(dm, "U0SANDYATH")[-1].text == "hi"
    assert (await call(api, "chat.postMessage", channel="C0NOWHERE", text="x"))["error"] == "channel_not_found"
    await call(api, "chat.postEphemeral", channel=SUPPORT_CHANNEL, user=AGENT, text="psst")
    assert api.slack.workspace.visible(SUPPORT_CHANNEL, "U0OUTSIDER") == []  # ephemeral: only the agent sees it
    assert (await call(api, "views.publish", user_id=AGENT, view={"type": "home", "blocks": []}))["ok"]
    assert (await call(api, "views.publish", user_id=AGENT, view={"type": "modal"}))["error"] == "invalid_arguments"
    assert (await call(api, "usergroups.users.list", usergroup="S1"))["error"] == "no_such_subteam"


async def test_response_urls(api):
    ws = api.slack.workspace
    name = ws.new_response(SUPPORT_CHANNEL, AGENT)
    assert (await api.post(f"/respond/{name}", json={"text": "done"})).status == 200
    assert ws.visible(SUPPORT_CHANNEL, AGENT)[-1].ephemeral_to == AGENT
    assert (await api.post("/respond/unknown", json={"text": "x"})).status == 404
    assert (await api.post(f"/respond/{name}", data=b"not json")).status == 400


def test_an_acknowledgement_comes_before_what_its_listener_already_sent():
    ws = Workspace()
    name = ws.new_response(SUPPORT_CHANNEL, AGENT)
    ws.respond(name, {"text": "the result"})  # the listener answered before its ack reached Slack
    ws.acknowledged(name, "working on it", [], AGENT)
    assert [m.text for m in ws.visible(SUPPORT_CHANNEL, AGENT)] == ["working on it", "the result"]


async def test_the_page_refuses_bad_input_and_other_sites(api, caplog):
    ws = api.slack.workspace
    assert (await api.post("/action", data={"m": "abc", "b": "0", "e": "0"})).status == 400
    assert (await api.post("/action", data={"m": "999", "b": "0", "e": "0"})).status == 404
    assert (await api.get("/confirm?m=1&b=x&e=0")).status == 400
    assert (await api.get("/?c=C0NOWHERE")).status == 404
    assert (await api.post("/agent", data={"who": "UNOBODY"})).status == 400
    assert (await api.post("/agent", data={"who": "U0OUTSIDER"}, headers={"Sec-Fetch-Site": "cross-site"})).status == 403
    assert (await api.post("/command", data={"text": "/fitglue help"}, headers={"Origin": "http://evil.example"})
            ).status == 403
    assert ws.page_user == AGENT and ws.messages == []  # nothing changed
    assert not [r for r in caplog.records if r.levelname == "ERROR"]
