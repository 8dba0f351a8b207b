"""`/fitglue affected FINDING` and its "Send Connect links to all N" button, end to end: signed
requests in, the queue worker runs the bulk run against the local Slack, which rate-limits a call
partway through and serves Slack's two-step file upload."""

from __future__ import annotations

import csv
import io
import logging
import re
from typing import Any

from sqlalchemy import select

from service.background.job_handlers import run_pending
from service.db.models import AuditEntry, BulkLinkRun
from tests.bot.conftest import AGENT, OUTSIDER, Signed
from tests.bot.helpers import assert_valid_blocks, everything
from tests.integration.test_affected import _set
from troubleshooting.vocabulary import ConnectionStatus

MEMBERS = {"m1@example.com": "UM1", "m2@example.com": "UM2", "m3@example.com": "UM3"}
OUTSIDERS = ["o1@example.com", "o2@example.com", "o3@example.com"]
LINK = re.compile(r"https?://[^\s|>\"'\\,]+/connect/strava\?t=[A-Za-z0-9._~%-]+")


class FakeTime:
    """Slack's pacing on the test's own clock: every wait is recorded and passes at once."""

    def __init__(self) -> None:
        self.t = 0.0
        self.waits: list[float] = []

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.t += seconds


def pace_on(rt: Any) -> FakeTime:
    fake = FakeTime()
    courier = rt.courier
    courier.sleep = courier.pacer.sleep = fake.sleep
    courier.pacer.now = fake.now
    return fake


async def six_revoked(rt: Any, slack: Any) -> None:
    slack.members.update(MEMBERS)
    for email in [*MEMBERS, *OUTSIDERS]:
        await _set(rt, email, status=ConnectionStatus.REVOKED, status_changed_at=rt.clock.now())


def bulk_button(message: dict[str, Any]) -> dict[str, Any]:
    return next(e for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]
                if e["action_id"] == "send_links_bulk")


async def test_affected_lists_users_and_offers_the_bulk_button_with_the_count(signed: Signed, slack,
                                                                              bot_runtime) -> None:
    await six_revoked(bot_runtime, slack)
    await signed.command("affected revoked")
    reply = (await slack.wait_for_responses(1))[0]
    assert_valid_blocks(reply)
    assert reply["text"] == "6 user(s) with revoked"
    button = bulk_button(reply)
    assert button["value"] == "revoked" and "6" in button["text"]["text"]
    assert "6" in button["confirm"]["title"]["text"] and "6 users" in button["confirm"]["text"]["text"]
    for email in [*MEMBERS, *OUTSIDERS]:
        assert email in everything(reply)


async def test_bulk_send_dms_members_shares_a_csv_for_the_rest_and_honours_retry_after(
        signed: Signed, slack, bot_runtime, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    await six_revoked(bot_runtime, slack)
    fake = pace_on(bot_runtime)
    slack.rate_limit_calls = {"users.lookupByEmail": {3}}  # the third lookup answers 429
    slack.retry_after_s = 7
    await signed.click("send_links_bulk", "revoked", response="bulk")
    queued = (await slack.wait_for_responses(1))[0]
    assert queued["text"].startswith("Sending Connect links for revoked: 0 of 6")

    assert await run_pending(bot_runtime) >= 1

    dms = [c for c in slack.called("chat.postMessage") if LINK.search(everything(c.params))]
    assert sorted(c.params["channel"] for c in dms) == ["DM1", "DM2", "DM3"]
    assert 7 in fake.waits, "the 429's Retry-After was not waited for"
    lookups = slack.called("users.lookupByEmail")
    assert len(lookups) == 7  # six users, one of them asked twice
    # Paced: Slack's 50 a minute is 1.2 s apart; the retry waited Retry-After first.
    assert fake.t >= 5 * 1.2 + 7

    assert len(slack.called("files.getUploadURLExternal")) == 1
    [complete] = slack.called("files.completeUploadExternal")
    assert complete.params["channel_id"] == "DAGENT1"  # the asking agent's DM with the bot, nobody else
    [(file_id, content)] = slack.uploads.items()
    assert slack.shared == {file_id: "DAGENT1"}
    rows = list(csv.DictReader(io.StringIO(content.decode())))
    assert sorted(r["email"] for r in rows) == OUTSIDERS
    assert all(LINK.fullmatch(r["connect_link"]) for r in rows)

    report = [c for c in slack.called("chat.postMessage") if c.params["channel"] == "DAGENT1"]
    assert len(report) == 1 and "6 sent, 0 skipped, 0 failed" in report[0].params["text"]
    progress = [r for r in slack.responses if r["_to"] == "bulk"]
    assert len(progress) == 4  # the button's reply and three updates: Slack allows five uses
    assert [r["text"].split(": ")[1].split(" handled")[0] for r in progress] == ["0 of 6", "2 of 6", "3 of 6", "5 of 6"]

    async with bot_runtime.sessions() as session:
        audit = (await session.execute(select(AuditEntry).where(AuditEntry.action == "issue_connect_link"))
                 ).scalars().all()
        run = (await session.execute(select(BulkLinkRun))).scalar_one()
    assert sorted(a.target for a in audit) == sorted([*MEMBERS, *OUTSIDERS])
    assert all(a.actor == f"slack:{AGENT}" for a in audit)
    assert (run.state, run.sent, run.to_file, run.active_key) == ("done", 6, 3, None)
    links = {m.group(0) for c in slack.calls for m in LINK.finditer(everything(c.params))}
    links |= {r["connect_link"] for r in rows}
    for link in links:
        assert link.split("t=")[1] not in caplog.text
    for call in slack.called("chat.postMessage"):
        assert not str(call.params["channel"]).startswith("C") or not LINK.search(everything(call.params))


async def test_a_second_run_skips_live_links_and_only_one_run_is_active(signed: Signed, slack,
                                                                         bot_runtime) -> None:
    await six_revoked(bot_runtime, slack)
    pace_on(bot_runtime)
    await signed.click("send_links_bulk", "revoked", response="first")
    await signed.click("send_links_bulk", "revoked", response="second")
    replies = await slack.wait_for_responses(2)
    busy = next(r for r in replies if r["_to"] == "second")
    assert "already under way" in busy["text"]
    await run_pending(bot_runtime)
    await signed.click("send_links_bulk", "revoked", response="third")
    await slack.wait_for_responses(3)
    await run_pending(bot_runtime)
    reports = [c for c in slack.called("chat.postMessage") if c.params["channel"] == "DAGENT1"]
    assert "0 sent, 6 skipped" in reports[-1].params["text"]


async def test_an_agent_not_on_the_list_cannot_start_a_bulk_run(signed: Signed, slack, bot_runtime) -> None:
    await six_revoked(bot_runtime, slack)
    await signed.click("send_links_bulk", "revoked", user=OUTSIDER)
    refusal = (await slack.wait_for_responses(1))[0]
    assert OUTSIDER in refusal["text"]
    await run_pending(bot_runtime)
    async with bot_runtime.sessions() as session:
        assert (await session.execute(select(BulkLinkRun))).scalars().all() == []
    assert slack.called("users.lookupByEmail") == [] and slack.called("files.getUploadURLExternal") == []


async def test_an_upload_url_that_redirects_gets_no_links(signed: Signed, slack, bot_runtime) -> None:
    """The CSV of Connect links goes to the upload URL Slack gave, and nowhere else: a redirect
    (307 keeps the body) is a failed upload, not followed."""
    await six_revoked(bot_runtime, slack)
    pace_on(bot_runtime)
    slack.redirect_uploads = True
    await signed.click("send_links_bulk", "revoked", response="bulk")
    await slack.wait_for_responses(1)
    await run_pending(bot_runtime)
    assert slack.collected == []  # before: the links were posted to /collect
    assert slack.called("files.completeUploadExternal") == []
    [report] = [c for c in slack.called("chat.postMessage") if c.params["channel"] == "DAGENT1"]
    assert "could not be shared" in report.params["text"]
