"""The bot in Socket Mode against the local Slack: until now Socket Mode was mounted but never opened.
A command, a button, and a reconnect after the socket is dropped (issue 14)."""

from __future__ import annotations

import asyncio

import aiohttp

from sandbox_slack import AGENT, SUPPORT_CHANNEL
from sandbox_slack.blockkit import find_button
from sandbox_slack.workspace import Message
from service.desk.support_desk import SupportDesk
from tests.sandbox_slack.conftest import BOT_TOKEN, SIGNING_SECRET

EMAIL = "sandbox-athlete@example.com"  # a member of the local workspace: links go to them by DM


async def wait_until(done, timeout: float = 15.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not done():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


def last_reply(slack) -> Message:
    return [m for m in slack.workspace.visible(SUPPORT_CHANNEL, AGENT) if m.sender != AGENT][-1]


def button_place(message: Message, action_id: str) -> tuple[int, dict]:
    for b, block in enumerate(message.blocks):
        for e, _element in enumerate(block.get("elements", []) if block.get("type") == "actions" else []):
            found = find_button(message.blocks, b, e)
            if found and found.get("action_id") == action_id:
                return b, found
    raise AssertionError(f"no {action_id} button in {message.blocks}")


async def command(slack, text: str) -> Message:
    name, _acknowledged = await slack.relay.command(AGENT, text, SUPPORT_CHANNEL)
    assert await slack.workspace.wait_for_response(name, 10), "no reply came"
    return last_reply(slack)


async def test_command_button_and_reconnect_over_socket_mode(over_socket):
    slack, rt = over_socket
    await wait_until(lambda: slack.hub.connected)
    await SupportDesk(rt).issue_connect_link(EMAIL, "test")

    reply = await command(slack, f"diagnose {EMAIL}")
    assert f"{EMAIL} — Strava: not connected" in str(reply.blocks)
    assert "Working on it" in str(slack.workspace.messages)  # the ack's own payload, shown at once

    block, button = button_place(reply, "send_connect_link")
    name = await slack.relay.click(AGENT, reply, block, button)
    assert await slack.workspace.wait_for_response(name, 10)
    dm = slack.workspace.visible(slack.workspace.dm_channel("U0SANDYATH"), "U0SANDYATH")
    assert dm and "/connect/strava?t=" in str(dm[-1].blocks)

    assert await slack.hub.drop_all() == 1
    await wait_until(lambda: slack.hub.connected)  # the bot opened a new connection by itself
    again = await command(slack, "ratelimit")
    assert "read" in again.text.lower() or "budget" in str(again.blocks).lower()


async def test_the_refusal_over_socket_mode(over_socket):
    slack, _rt = over_socket
    await wait_until(lambda: slack.hub.connected)
    _name, acknowledged = await slack.relay.command("U0OUTSIDER", "diagnose someone@example.com", SUPPORT_CHANNEL)
    assert acknowledged  # the refusal is the acknowledgement itself
    refusal = slack.workspace.visible(SUPPORT_CHANNEL, "U0OUTSIDER")[-1]
    assert "U0OUTSIDER" in refusal.text and "support list" in refusal.text


async def test_command_and_button_over_http_are_signed(over_http, standin):
    slack, _rt = over_http
    reply = await command(slack, "webhook")
    before = reply.text
    block, button = button_place(reply, "reregister_webhook")
    assert button.get("confirm")  # app-wide change: Slack's confirm dialog
    name = await slack.relay.click(AGENT, reply, block, button)
    assert await slack.workspace.wait_for_response(name, 10)
    assert slack.workspace.message(reply.id).text != before  # replace_original: the same message, updated
    assert standin.subscription is not None
    # The page a person uses holds neither the signing secret nor the bot token.
    async with aiohttp.ClientSession() as http, http.get(f"{slack.base_url}/?c={SUPPORT_CHANNEL}") as page:
        html = await page.text()
    assert page.status == 200 and SIGNING_SECRET not in html and BOT_TOKEN not in html
    # A request signed with another secret is refused by the bot before Bolt sees it.
    slack.relay.signing_secret = "not-the-secret"
    done = await slack.relay._over_http("command=%2Ffitglue&text=help", "application/x-www-form-urlencoded")
    assert not done.ok and "401" in done.problem
