"""`/fitglue history WHO`, the "History" button under a diagnosis and the "More" button, end to end
through signed requests; and the history renderer against Block Kit's limits for any data."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot import render
from bot.render.history_blocks import HISTORY_PAGE, MORE_HISTORY, SHOW_HISTORY
from service.core.audit_log import add_entry
from tests.bot.conftest import OUTSIDER, Signed, connected_user
from tests.bot.helpers import ACK_BUDGET_S, assert_valid_blocks

ALICE = "alice@example.com"


def buttons(message: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["action_id"]: e for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]}


async def history_of_twenty_actions(service: Any, rt: Any) -> None:
    await connected_user(service, rt, ALICE)
    async with rt.write() as session:
        for n in range(20):
            add_entry(session, rt.clock, "cli:agent", f"looked_{n:02d}", ALICE, "ok")


async def test_history_command_shows_fifteen_entries_and_more_pages_on(signed: Signed, slack, service,
                                                                       bot_runtime) -> None:
    await history_of_twenty_actions(service, bot_runtime)
    response, elapsed = await signed.command(f"history {ALICE}")
    assert response.status == 200 and elapsed < ACK_BUDGET_S
    first = (await slack.wait_for_responses(1))[0]
    assert_valid_blocks(first)
    assert first["text"].startswith(f"History of {ALICE}: 15 entries")
    entries = [b for b in first["blocks"] if b["type"] == "context"]
    assert len(entries) == HISTORY_PAGE
    more = buttons(first)[MORE_HISTORY]
    assert more["value"].startswith(ALICE + " ")

    response, _ = await signed.click(MORE_HISTORY, more["value"])
    assert response.status == 200
    second = (await slack.wait_for_responses(2))[1]
    assert_valid_blocks(second)
    assert second["replace_original"] is True and "(older)" in second["text"]
    older = [b for b in second["blocks"] if b["type"] == "context"]
    assert older and older[0] not in entries


async def test_the_diagnosis_carries_a_history_button_that_opens_the_history(signed: Signed, slack, service,
                                                                            bot_runtime) -> None:
    await connected_user(service, bot_runtime, ALICE)
    await signed.command(f"diagnose {ALICE}")
    diagnosis = (await slack.wait_for_responses(1))[0]
    button = buttons(diagnosis)[SHOW_HISTORY]
    assert button["value"] == ALICE
    await signed.click(SHOW_HISTORY, button["value"])
    reply = (await slack.wait_for_responses(2))[1]
    assert_valid_blocks(reply)
    assert reply["text"].startswith(f"History of {ALICE}")
    assert "status" in str(reply["blocks"])


async def test_history_buttons_and_command_refuse_outsiders(signed: Signed, slack, service, bot_runtime) -> None:
    await connected_user(service, bot_runtime, ALICE)
    await signed.click(MORE_HISTORY, f"{ALICE} 1-0-1", user=OUTSIDER)
    refusal = (await slack.wait_for_responses(1))[0]
    assert OUTSIDER in refusal["text"] and "History" not in refusal["text"]
    response, _ = await signed.command(f"history {ALICE}", user=OUTSIDER)
    assert OUTSIDER in (await response.json())["text"]


async def test_a_bad_cursor_or_stranger_is_told_plainly(signed: Signed, slack, service, bot_runtime) -> None:
    await connected_user(service, bot_runtime, ALICE)
    await signed.click(MORE_HISTORY, f"{ALICE} not-a-cursor")
    await signed.command("history nobody@example.com", response="c2")
    replies = await slack.wait_for_responses(2)
    texts = sorted(r["text"] for r in replies)
    assert any("cursor" in t for t in texts) and any("no FitGlue user" in t for t in texts)
    await signed.command("history", response="c3")
    usage = (await slack.wait_for_responses(3))[2]
    assert "Whose history?" in usage["text"]


# --- Block Kit limits, whatever the data ----------------------------------------------------------------

ANY_TEXT = st.text(min_size=0, max_size=4000)
ENTRY = st.fixed_dictionaries({
    "at": st.one_of(st.none(), st.just("2026-11-27T14:00:00Z"), st.text(max_size=40)),
    "kind": st.one_of(st.sampled_from(["status_changed", "refresh_ok", "webhook_event", "job"]), ANY_TEXT),
    "summary": ANY_TEXT,
    "article": st.text(max_size=50),
})


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(who=st.text(min_size=1, max_size=400), entries=st.lists(ENTRY, max_size=80),
       cursor=st.one_of(st.none(), st.text(min_size=1, max_size=2500)), older=st.booleans())
def test_the_history_reply_stays_within_block_kit_limits(who: str, entries: list[dict[str, Any]],
                                                         cursor: str | None, older: bool) -> None:
    reply = render.history(who, {"entries": entries, "next_before": cursor}, older=older)
    assert_valid_blocks(reply.as_kwargs())
    for block in reply.blocks:
        if block["type"] == "section":
            assert len(block["text"]["text"]) <= 3000
        for element in block.get("elements", []):
            assert len(element.get("value", "")) <= 2000


USER = st.fixed_dictionaries({"email": ANY_TEXT, "athlete_id": st.one_of(st.none(), st.integers(0, 2**63)),
                              "since": st.one_of(st.none(), st.text(max_size=30), st.just("2026-11-27T08:00:00Z")),
                              "last_change": st.one_of(st.none(), st.text(max_size=30))})


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(finding=st.one_of(st.sampled_from(["needs_reauth", "webhook_silent"]), ANY_TEXT),
       count=st.integers(0, 10**7), users=st.lists(USER, max_size=40),
       days=st.lists(st.fixed_dictionaries({"date": st.text(max_size=40), "count": st.integers(0, 10**6)}),
                     max_size=400),
       since=st.one_of(st.none(), st.text(max_size=60)))
def test_the_affected_reply_stays_within_block_kit_limits(finding: str, count: int, users: list[dict[str, Any]],
                                                          days: list[dict[str, Any]], since: str | None) -> None:
    reply = render.affected({"finding": finding, "count": count, "since": since, "users": users, "by_day": days})
    assert_valid_blocks(reply.as_kwargs())
    for block in reply.blocks:
        if block["type"] == "section":
            assert len(block["text"]["text"]) <= 3000
