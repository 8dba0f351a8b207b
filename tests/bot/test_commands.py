"""Every /fitglue sub-command end to end: signed request → real service → ack → response_url."""

from __future__ import annotations

from typing import Any

from tests.bot.conftest import AGENT, GROUP_MEMBER, Signed, connected_user
from tests.bot.helpers import ACK_BUDGET_S, assert_valid_blocks, audit_rows, everything


async def run(signed: Signed, text: str, user: str = AGENT) -> tuple[dict[str, Any], dict[str, Any]]:
    """Send a command; returns (the ack body, the respond() post); asserts the ack was fast."""
    before = len(signed.slack.responses)
    response, elapsed = await signed.command(text, user=user)
    assert response.status == 200, await response.text()
    assert elapsed < ACK_BUDGET_S
    ack = await response.json() if (await response.read()) else {}
    replies = await signed.slack.wait_for_responses(before + 1)
    reply = replies[before]
    assert reply["response_type"] == "ephemeral"
    assert_valid_blocks(reply)
    return ack, reply


async def test_help_and_unknown_text_get_the_command_list(signed: Signed) -> None:
    for text in ("help", "", "frobnicate the thing"):
        _ack, reply = await run(signed, text)
        assert "/fitglue diagnose" in reply["text"]
        assert "diagnose EMAIL" in everything(reply) and "webhook register" in everything(reply)


async def test_malformed_email_gets_a_helpful_reply(signed: Signed) -> None:
    _ack, reply = await run(signed, "link not-an-address")
    assert "doesn't look like an e-mail address" in reply["text"]
    assert "/fitglue link EMAIL" in everything(reply)
    _ack, reply = await run(signed, "diagnose")
    assert "Whom should I diagnose" in reply["text"]


async def test_diagnose_connected_user(signed: Signed, service, bot_runtime) -> None:
    await connected_user(service, bot_runtime)
    ack, reply = await run(signed, "diagnose <mailto:alice@example.com|alice@example.com>")
    assert ack["response_type"] == "ephemeral"
    assert reply["text"].startswith("alice@example.com — Strava: connected")
    header = reply["blocks"][0]
    assert header["type"] == "header" and "alice@example.com" in header["text"]["text"]
    assert "connected" in header["text"]["text"]
    context = next(b for b in reply["blocks"] if b["type"] == "context")
    facts = everything(context)
    assert "Athlete" in facts and "activity:write" in facts and "Token expires" in facts


async def test_diagnose_unknown_user_offers_a_connect_link_button(signed: Signed) -> None:
    _ack, reply = await run(signed, "diagnose nobody@example.com")
    assert "nobody@example.com" in reply["text"]
    buttons = [e for b in reply["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert ("send_connect_link", "nobody@example.com") in [(b["action_id"], b["value"]) for b in buttons]


async def test_diagnose_by_athlete_id(signed: Signed, service, bot_runtime) -> None:
    await connected_user(service, bot_runtime)
    from sqlalchemy import select

    from service.db.models import StravaConnection

    async with bot_runtime.sessions() as session:
        athlete_id = (await session.execute(select(StravaConnection.athlete_id))).scalar_one()
    _ack, reply = await run(signed, f"diagnose {athlete_id}")
    assert reply["text"].startswith("alice@example.com — Strava: connected")


async def test_group_member_may_use_the_bot(signed: Signed, slack) -> None:
    _ack, reply = await run(signed, "help", user=GROUP_MEMBER)
    assert "/fitglue diagnose" in reply["text"]
    assert len(slack.called("usergroups.users.list")) == 1
    await run(signed, "help", user=GROUP_MEMBER)
    assert len(slack.called("usergroups.users.list")) == 1  # cached


async def test_every_command_is_audited_with_the_slack_user(signed: Signed, bot_runtime) -> None:
    await run(signed, "diagnose nobody@example.com")
    rows = await audit_rows(bot_runtime)
    request = [r for r in rows if r.action == "slack_command:diagnose"]
    assert len(request) == 1
    assert request[0].actor == f"slack:{AGENT}" and request[0].target == "nobody@example.com"
    assert request[0].result == "allowed"
