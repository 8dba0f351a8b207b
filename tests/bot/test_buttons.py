"""The buttons and the link delivery end to end, and what must never happen to a Connect link."""

from __future__ import annotations

import logging
import re
from typing import Any

from sqlalchemy import select

from service.db.models import ConnectLink, StravaConnection
from tests.bot.conftest import AGENT, Signed, connected_user
from tests.bot.helpers import ACK_BUDGET_S, assert_valid_blocks, audit_rows, everything
from tests.webhook_support import point_public_url_at

LINK = re.compile(r"https?://[^\s|>\"'\\]+/connect/strava\?t=[A-Za-z0-9._~%-]+")


async def click(signed: Signed, action_id: str, value: str, user: str = AGENT) -> dict[str, Any]:
    before = len(signed.slack.responses)
    response, elapsed = await signed.click(action_id, value, user=user)
    assert response.status == 200, await response.text()
    assert elapsed < ACK_BUDGET_S
    reply = (await signed.slack.wait_for_responses(before + 1))[before]
    assert reply["response_type"] == "ephemeral"
    assert_valid_blocks(reply)
    return reply


def assert_link_never_in_channels_or_logs(signed: Signed, caplog: Any, link: str) -> None:
    token = link.split("t=", 1)[1]
    for call in signed.slack.called("chat.postMessage"):
        if token in everything(call.params):
            assert str(call.params["channel"]).startswith("D"), "a Connect link was posted outside a DM"
    assert token not in caplog.text
    for record in caplog.records:
        assert token not in record.getMessage()


async def test_link_to_workspace_member_goes_by_dm(signed: Signed, slack, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    slack.members["bob@example.com"] = "UBOB"
    response, elapsed = await signed.command("link bob@example.com")
    assert response.status == 200 and elapsed < ACK_BUDGET_S
    reply = (await slack.wait_for_responses(1))[0]
    assert_valid_blocks(reply)
    assert reply["text"].startswith("Sent bob@example.com a Connect link by direct message")
    assert not LINK.search(everything(reply)), "the agent needs no copy of a link that went by DM"
    assert slack.called("conversations.open")[0].params["users"] == "UBOB"
    dm = slack.called("chat.postMessage")[0]
    assert dm.params["channel"] == "DBOB"
    link = LINK.search(everything(dm.params))
    assert link is not None
    assert_link_never_in_channels_or_logs(signed, caplog, link.group(0))


async def test_link_for_non_member_goes_only_to_the_agent(signed: Signed, slack, caplog, bot_runtime) -> None:
    caplog.set_level(logging.DEBUG)
    response, _ = await signed.command("link <mailto:carol@example.com|carol@example.com>")
    assert response.status == 200
    reply = (await slack.wait_for_responses(1))[0]
    assert_valid_blocks(reply)
    assert "carol@example.com" in reply["text"] and "not a member" in reply["text"]
    link = LINK.search(everything(reply["blocks"]))
    assert link is not None and "Ready to paste" in everything(reply)
    assert not LINK.search(reply["text"]), "the notification text carries no link"
    assert slack.called("chat.postMessage") == [] and slack.called("conversations.open") == []
    assert_link_never_in_channels_or_logs(signed, caplog, link.group(0))
    rows = await audit_rows(bot_runtime)
    assert any(r.action == "issue_connect_link" and r.actor == f"slack:{AGENT}" for r in rows)


async def test_send_connect_link_button_replaces_the_diagnosis(signed: Signed, slack, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    reply = await click(signed, "send_connect_link", "dave@example.com")
    assert reply["replace_original"] is True
    assert "Connect link for dave@example.com" in reply["text"]
    assert "dave@example.com — Strava: not connected" in reply["text"]  # the fresh diagnosis
    link = LINK.search(everything(reply["blocks"]))
    assert link is not None
    assert_link_never_in_channels_or_logs(signed, caplog, link.group(0))


async def test_refresh_token_button_refreshes_and_shows_the_new_status(signed: Signed, service, bot_runtime,
                                                                       clock) -> None:
    await connected_user(service, bot_runtime)
    async with bot_runtime.sessions() as session:
        before = (await session.execute(select(StravaConnection))).scalar_one()
    clock.advance(minutes=30)
    reply = await click(signed, "refresh_token", "alice@example.com")
    assert reply["replace_original"] is True
    assert reply["text"].startswith("Refreshed the Strava token for alice@example.com")
    assert "alice@example.com — Strava: connected" in reply["text"]
    async with bot_runtime.sessions() as session:
        after = (await session.execute(select(StravaConnection))).scalar_one()
    assert after.last_refresh_at is not None and after.last_refresh_at != before.last_refresh_at


async def test_refresh_command_for_unknown_user_says_so(signed: Signed, slack) -> None:
    response, _ = await signed.command("refresh ghost@example.com")
    assert response.status == 200
    reply = (await slack.wait_for_responses(1))[0]
    assert reply["text"].startswith("That didn't work") and "ghost@example.com" in reply["text"]


async def test_reregister_button_repairs_and_reports_steps(signed: Signed, service, bot_runtime, standin) -> None:
    point_public_url_at(bot_runtime, service)
    reply = await click(signed, "reregister_webhook", "alice@example.com")
    assert reply["replace_original"] is True
    assert "Strava webhook checked and repaired" in reply["text"], reply["text"]
    assert "created subscription" in everything(reply["blocks"])
    # and the diagnosis underneath no longer reports a missing webhook
    assert "alice@example.com — Strava" in reply["text"]
    assert "webhook_missing" not in everything(reply)


async def test_reregister_button_has_a_danger_confirm(signed: Signed, slack) -> None:
    response, _ = await signed.command("webhook")
    assert response.status == 200
    reply = (await slack.wait_for_responses(1))[0]
    assert_valid_blocks(reply)
    assert reply["text"].startswith("Strava webhook: no subscription")
    button = next(e for b in reply["blocks"] if b["type"] == "actions" for e in b["elements"])
    assert button["action_id"] == "reregister_webhook" and button["style"] == "danger"
    assert button["confirm"]["style"] == "danger" and button["confirm"]["confirm"]["text"] == "Re-register"


async def test_webhook_register_and_status_commands(signed: Signed, service, bot_runtime, slack) -> None:
    point_public_url_at(bot_runtime, service)
    await signed.command("webhook register")
    registered = (await slack.wait_for_responses(1))[0]
    assert_valid_blocks(registered)
    assert registered["text"].startswith("Strava webhook checked and repaired where needed: subscribed")
    await signed.command("webhook status")
    status = (await slack.wait_for_responses(2))[1]
    assert status["text"].startswith("Strava webhook: subscribed (id ")
    assert not [b for b in status["blocks"] if b["type"] == "actions"]


async def test_ratelimit_command(signed: Signed, bot_runtime, slack) -> None:
    assert bot_runtime.ledger is not None
    await bot_runtime.ledger.after_response("GET", "/athlete", 200, {
        "X-RateLimit-Limit": "200,2000", "X-RateLimit-Usage": "150,700",
        "X-ReadRateLimit-Limit": "100,1000", "X-ReadRateLimit-Usage": "95,300"})
    await signed.command("ratelimit")
    reply = (await slack.wait_for_responses(1))[0]
    assert_valid_blocks(reply)
    assert reply["text"].startswith("Strava API budget — all calls 15 min 150/200, day 700/2000; "
                                    "reads 15 min 95/100, day 300/1000; 0 queued"), reply["text"]
    assert "resets" in everything(reply["blocks"])


async def test_every_command_and_button_acks_fast(signed: Signed, service, bot_runtime, slack) -> None:
    """The ack comes back long before the work is done; measured through the real HTTP route."""
    await connected_user(service, bot_runtime)
    point_public_url_at(bot_runtime, service)
    slack.members["alice@example.com"] = "UALICE"
    timings: dict[str, float] = {}
    for text in ("help", "diagnose alice@example.com", "link alice@example.com", "refresh alice@example.com",
                 "webhook", "webhook register", "ratelimit", "nonsense"):
        response, elapsed = await signed.command(text, response=f"c{len(timings)}")
        assert response.status == 200
        timings[f"/fitglue {text}"] = elapsed
    for action_id in ("send_connect_link", "refresh_token", "reregister_webhook"):
        response, elapsed = await signed.click(action_id, "alice@example.com", response=f"c{len(timings)}")
        assert response.status == 200
        timings[f"button {action_id}"] = elapsed
    await slack.wait_for_responses(len(timings), timeout=20)
    print("\nack latency (s): " + ", ".join(f"{k}={v:.3f}" for k, v in timings.items()))
    assert max(timings.values()) < ACK_BUDGET_S
    assert {r["_to"] for r in slack.responses} == {f"c{i}" for i in range(len(timings))}
    async with bot_runtime.sessions() as session:
        assert len((await session.execute(select(ConnectLink))).scalars().all()) == 3  # 1 setup + 2 sent
