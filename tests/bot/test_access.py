"""Only the people in FITGLUE_SUPPORT_SLACK_IDS get anything done; everyone else learns their id."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import func, select

from bot.access import AccessList
from service.app.factory import build_app
from service.app.wiring import wire_optional_parts
from service.db.models import ConnectLink, User
from tests.bot.conftest import GROUP, OUTSIDER, Signed
from tests.bot.helpers import ACK_BUDGET_S, assert_valid_blocks, audit_rows


def assert_refusal(message: dict[str, Any], user: str) -> None:
    assert_valid_blocks(message)
    text = message["text"] + str(message["blocks"])
    assert user in text and "FITGLUE_SUPPORT_SLACK_IDS" in text


async def nothing_happened(rt: Any, slack: Any) -> None:
    await asyncio.sleep(0.2)  # give a wrongly started listener time to act
    allowed = {"auth.test", "usergroups.users.list"}
    assert [c.method for c in slack.calls if c.method not in allowed] == []
    async with rt.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(User)) == 0
        assert await session.scalar(select(func.count()).select_from(ConnectLink)) == 0


async def test_outsider_command_is_refused_with_their_id(signed: Signed, slack, bot_runtime) -> None:
    response, elapsed = await signed.command("link victim@example.com", user=OUTSIDER)
    assert response.status == 200 and elapsed < ACK_BUDGET_S
    ack = await response.json()
    assert ack["response_type"] == "ephemeral"
    assert_refusal(ack, OUTSIDER)
    await nothing_happened(bot_runtime, slack)
    assert slack.responses == []
    rows = await audit_rows(bot_runtime)
    assert [(r.actor, r.action, r.target, r.result) for r in rows] == [
        (f"slack:{OUTSIDER}", "slack_command:link", "victim@example.com", "refused")]


async def test_outsider_button_is_refused_and_does_nothing(signed: Signed, slack, bot_runtime) -> None:
    for action_id in ("send_connect_link", "refresh_token", "reregister_webhook"):
        response, _ = await signed.click(action_id, "victim@example.com", user=OUTSIDER)
        assert response.status == 200
    replies = await slack.wait_for_responses(3)
    for reply in replies:
        assert reply["replace_original"] is False  # the diagnosis someone else shared stays
        assert_refusal(reply, OUTSIDER)
    await nothing_happened(bot_runtime, slack)
    rows = await audit_rows(bot_runtime)
    assert sorted(r.action for r in rows) == ["slack_button:refresh_token", "slack_button:reregister_webhook",
                                              "slack_button:send_connect_link"]
    assert {(r.actor, r.result) for r in rows} == {(f"slack:{OUTSIDER}", "refused")}


async def test_unset_allowlist_refuses_everybody(aiohttp_client, bot_runtime, slack) -> None:
    bot_runtime.settings = bot_runtime.settings.replaced(support_slack_ids=())
    app = build_app(bot_runtime, background=False)
    await wire_optional_parts(app, bot_runtime)
    signed = Signed(await aiohttp_client(app), slack)
    response, _ = await signed.command("help", user="UANYONE")
    assert_refusal(await response.json(), "UANYONE")


async def test_group_lookup_failure_fails_closed(signed: Signed, slack) -> None:
    slack.failing["usergroups.users.list"] = "plan_upgrade_required"
    response, _ = await signed.command("help", user="UGROUPIE")
    assert_refusal(await response.json(), "UGROUPIE")


class FakeClient:
    def __init__(self, members: list[str]) -> None:
        self.members = members
        self.calls = 0

    async def usergroups_users_list(self, usergroup: str) -> dict[str, Any]:
        self.calls += 1
        return {"ok": True, "users": self.members}


async def test_group_membership_is_cached_for_five_minutes() -> None:
    now = [1000.0]
    access = AccessList([GROUP, "UDIRECT", "bogus"], monotonic=lambda: now[0])
    client = FakeClient(["UMEMBER"])
    assert await access.allows("UDIRECT", client) and client.calls == 0  # type: ignore[arg-type]
    assert await access.allows("UMEMBER", client)  # type: ignore[arg-type]
    assert not await access.allows("UOTHER", client)  # type: ignore[arg-type]
    assert client.calls == 1
    client.members = []
    now[0] += 299
    assert await access.allows("UMEMBER", client)  # type: ignore[arg-type]
    now[0] += 2
    assert not await access.allows("UMEMBER", client)  # type: ignore[arg-type]
    assert client.calls == 2
    assert not await access.allows(None, client)  # type: ignore[arg-type]
