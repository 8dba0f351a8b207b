"""The local Slack's Web API and response URLs answer as Slack does, and keep what the bot sent."""

from __future__ import annotations

import json
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


@pytest.mark.parametrize("host", ["rebind.attacker.example", "rebind.attacker.example:80", "127.0.0.1.evil.example",
                                  "10.0.0.7", "[::1", ""])
async def test_only_loopback_names_are_answered(api, host):
    """DNS rebinding: another website whose name resolves to 127.0.0.1 is same-origin with itself, so the
    Origin check passes; it could read the DMs' Connect links and command the bot as the agent. Its Host
    header gives it away, and nothing is answered or relayed."""
    ws = api.slack.workspace
    headers = {"Host": host, "Origin": f"http://{host}", "Sec-Fetch-Site": "same-origin"}
    assert (await api.get("/?c=C0SUPPORT", headers=headers)).status == 421
    assert (await api.post("/command", data={"text": "/fitglue link x@example.com"}, headers=headers)).status == 421
    assert (await api.post("/agent", data={"who": "U0OUTSIDER"}, headers=headers)).status == 421
    assert ws.page_user == AGENT and ws.messages == []
    for loopback in ("localhost", "127.0.0.1:8080", "[::1]:9", "LOCALHOST"):
        assert (await api.get("/?c=C0SUPPORT", headers={"Host": loopback})).status == 200


async def test_the_file_upload_flow_shares_a_file_into_one_conversation(api):
    """The bulk send's CSV for users outside the workspace goes through Slack's upload flow
    (files.getUploadURLExternal, the bytes to its URL, files.completeUploadExternal). The sandbox's local
    Slack answered `unknown_method`, so every sandbox bulk send lost its CSV (and the links in it)."""
    from urllib.parse import urlsplit

    ws = api.slack.workspace
    data = b"email,athlete_id,connect_link,expires_at\r\nout@example.com,7,http://x/connect/strava?t=abc,2026\r\n"
    got = await call(api, "files.getUploadURLExternal", filename="links.csv", length=len(data))
    assert got["ok"] and got["file_id"].startswith("F")
    assert (await api.post(urlsplit(got["upload_url"]).path, data=data)).status == 200
    dm = ws.dm_channel(AGENT)
    done = await call(api, "files.completeUploadExternal", channel_id=dm, initial_comment="only you",
                      files=[{"id": got["file_id"], "title": "Connect links"}])
    assert done["ok"] and done["files"][0]["id"] == got["file_id"]
    shared = ws.visible(dm, AGENT)[-1]
    assert "only you" in shared.text and "out@example.com" in str(shared.blocks) and "links.csv" in str(shared.blocks)
    assert [m for m in ws.messages if m.channel != dm] == []  # into that conversation alone
    # Slack's refusals: an unknown or never-uploaded file, a missing length, a bad channel.
    assert (await call(api, "files.completeUploadExternal", channel_id=dm, files=[{"id": "F404"}]))["error"] \
        == "file_not_found"
    assert (await call(api, "files.getUploadURLExternal", filename="x.csv"))["error"] == "invalid_arguments"
    again = await call(api, "files.getUploadURLExternal", filename="y.csv", length=1)
    assert (await call(api, "files.completeUploadExternal", channel_id=dm, files=[{"id": again["file_id"]}]))[
        "error"] == "file_not_found"  # its bytes never came
    assert (await api.post("/upload/FNOSUCH", data=b"x")).status == 404
    assert (await call(api, "files.completeUploadExternal", channel_id="C0NOWHERE",
                       files=json.dumps([{"id": got["file_id"]}])))["error"] == "channel_not_found"
