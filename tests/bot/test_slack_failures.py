"""Slack's Web API failing in any shape, for every method the bot calls: the agent gets an answer that
says what happened, a Connect link already issued still reaches the agent privately, nothing raises
into the caller and nothing is logged at ERROR.

The shapes come from the local Slack (`FAILURE_SHAPES`); the methods are every `call("…")` in `bot/`,
so a new Web API call without a scenario here fails `test_every_called_method_has_a_scenario`.
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import func, select

import bot
from bot.access import AccessList
from bot.alerts import SlackAlerts
from bot.slack_api import NOT_JSON, RATE_LIMITED, REFUSED, SERVER_ERROR, TIMEOUT, UNREACHABLE, classify
from service.app.factory import build_app
from service.app.wiring import wire_optional_parts
from service.core.incidents import IncidentAlerts
from service.db.models import ConnectLink
from tests.bot.conftest import AGENT, ALERT_CHANNEL, BOT_TOKEN, GROUP, GROUP_MEMBER, Signed
from tests.bot.helpers import ACK_BUDGET_S, assert_valid_blocks, audit_rows, everything
from tests.bot.slack_standin import FAILURE_SHAPES, RETRY_AFTER_S, SlackStandin

TIMEOUT_S = 1.5
LINK = re.compile(r"https?://[^\s|>\"'\\]+/connect/strava\?t=[A-Za-z0-9._~%-]+")

# What the agent (or the log) is told, per shape; `{m}` is the method.
WORDS = {
    "ok_false": "Slack refused {m} with `internal_error`",
    "not_json": "{m} got an answer that is not from Slack's API (HTTP 405",
    "html_error": "{m} got an answer that is not from Slack's API (HTTP 403",
    "broken_json": "{m} got an answer that is not from Slack's API (HTTP 200",
    "server_error": "Slack had a server error answering {m} (HTTP 503)",
    "rate_limited": f"Slack is rate-limiting {{m}}; try again in {RETRY_AFTER_S} s",
    "timeout": f"Slack did not answer {{m}} within {TIMEOUT_S:g} s",
}


@pytest.fixture
def slack_overrides(slack_overrides: dict[str, Any]) -> dict[str, Any]:
    return {**slack_overrides, "slack_timeout_s": TIMEOUT_S}


@dataclass
class World:
    signed: Signed
    slack: SlackStandin
    rt: Any
    caplog: Any


def no_errors_logged(caplog: Any) -> None:
    bad = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert bad == [], [r.getMessage() for r in bad]


async def logged(caplog: Any, text: str, timeout: float = 5.0) -> str:
    """The first log message containing `text`, waiting for a listener still at work."""
    deadline = time.monotonic() + timeout
    while True:
        for record in caplog.records:
            if text in record.getMessage():
                return record.getMessage()
        if time.monotonic() > deadline:
            raise AssertionError(f"nothing logged with {text!r}: {[r.getMessage() for r in caplog.records]}")
        await asyncio.sleep(0.01)


# ---------------------------------------------------------------------------------------------
# one scenario per (method, where the bot calls it); each returns what the agent or the log saw


async def link_by_dm(w: World) -> str:
    """`/fitglue link` for a workspace member: the link still reaches the agent, privately."""
    w.slack.members["bob@example.com"] = "UBOB"
    response, elapsed = await w.signed.command("link bob@example.com")
    assert response.status == 200 and elapsed < ACK_BUDGET_S
    reply = (await w.slack.wait_for_responses(1, timeout=10))[0]
    assert reply["response_type"] == "ephemeral"
    assert_valid_blocks(reply)
    assert reply["text"].startswith("Connect link for bob@example.com ready for you to pass on ("), reply["text"]
    link = LINK.search(everything(reply["blocks"]))
    assert link is not None, "the issued link reaches the agent"
    async with w.rt.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(ConnectLink)) == 1
    token = link.group(0).split("t=", 1)[1]
    assert token not in w.caplog.text
    return reply["text"]


async def group_member_command(w: World) -> str:
    """A member of an allowed user group: refused (fail closed), and told that Slack was the problem."""
    response, elapsed = await w.signed.command("help", user=GROUP_MEMBER)
    assert response.status == 200 and elapsed < ACK_BUDGET_S
    ack = await response.json()
    assert_valid_blocks(ack)
    assert ack["text"].startswith("Sorry, I couldn't confirm that you're on FitGlue's support list: "
                                  f"I could not check the user group {GROUP} with Slack: "), ack["text"]
    assert GROUP_MEMBER in ack["text"]
    rows = await audit_rows(w.rt)
    assert [(r.actor, r.result) for r in rows] == [(f"slack:{GROUP_MEMBER}", "refused")]
    assert rows[0].detail and rows[0].detail.startswith(f"I could not check the user group {GROUP}")
    return ack["text"]


async def home_tab(w: World) -> str:
    """App Home: nobody to reply to; the failure is a warning in the log, not an ERROR."""
    response, _ = await w.signed.event({"type": "app_home_opened", "user": AGENT, "tab": "home",
                                        "channel": "D0HOME"})
    assert response.status == 200
    await w.slack.wait_for_call("views.publish")
    return await logged(w.caplog, f"App Home for {AGENT} not published: ")


async def alert_post(w: World) -> str:
    """An alert that cannot be posted: the caller goes on, no incident is left open, the next try posts."""
    sink = w.rt.alerts
    assert isinstance(sink, IncidentAlerts) and isinstance(sink.poster, SlackAlerts)
    await sink.alert("budget_high", "Strava API budget at 95%")
    assert await sink.open_incidents() == []
    seen = await logged(w.caplog, f"could not post an alert to {ALERT_CHANNEL}: ")
    w.slack.shapes.clear()
    await sink.alert("budget_high", "Strava API budget at 95%")
    assert await sink.open_incidents() == ["budget_high"]
    return seen


async def bulk_csv(w: World) -> str:
    """A bulk run whose CSV for the agent cannot be shared: the run ends, and the agent's report says why
    and how to get the links again."""
    from service.background.job_handlers import run_pending
    from tests.integration.test_affected import _set

    w.rt.settings = w.rt.settings.replaced(slack_lookup_per_min=60_000, slack_post_per_min=60_000)
    await _set(w.rt, "outside@example.com", status="revoked", status_changed_at=w.rt.clock.now())
    await w.signed.click("send_links_bulk", "revoked", response="bulk")
    await w.slack.wait_for_responses(1)
    await run_pending(w.rt)
    [report] = [c for c in w.slack.called("chat.postMessage") if c.params["channel"] == "DAGENT1"]
    text = str(report.params["text"])
    assert "0 sent, 1 not delivered, 0 skipped, 0 failed" in text and "--send-links --yes --force" in text
    # The report must not also claim the links are in a file it never shared (it did, in the sandbox).
    assert "in the CSV file I sent you" not in everything(report.params)
    assert not LINK.search(everything(report.params)) and not LINK.search(w.caplog.text)
    return text


SCENARIOS: dict[str, tuple[str, Callable[[World], Awaitable[str]]]] = {
    "users.lookupByEmail": ("users.lookupByEmail", link_by_dm),
    "conversations.open": ("conversations.open", link_by_dm),
    "chat.postMessage (DM)": ("chat.postMessage", link_by_dm),
    "chat.postMessage (alert)": ("chat.postMessage", alert_post),
    "usergroups.users.list": ("usergroups.users.list", group_member_command),
    "views.publish": ("views.publish", home_tab),
    "files.getUploadURLExternal": ("files.getUploadURLExternal", bulk_csv),
    "files.completeUploadExternal": ("files.completeUploadExternal", bulk_csv),
}


def test_every_called_method_has_a_scenario() -> None:
    """Every `call("method", …)` in the bot is in SCENARIOS."""
    package = Path(bot.__file__).parent
    called = {m for path in package.glob("*.py") for m in re.findall(r'call\("([\w.]+)"', path.read_text())}
    assert called == {method for method, _ in SCENARIOS.values()}


@pytest.mark.parametrize("shape", list(FAILURE_SHAPES))
@pytest.mark.parametrize("scenario", list(SCENARIOS))
async def test_every_method_failing_in_every_shape_gets_a_clear_answer(
        scenario: str, shape: str, signed: Signed, slack: SlackStandin, bot_runtime: Any, caplog: Any) -> None:
    caplog.set_level(logging.INFO)
    method, run = SCENARIOS[scenario]
    slack.shapes[method] = shape
    seen = await run(World(signed, slack, bot_runtime, caplog))
    assert WORDS[shape].format(m=method) in seen, seen
    assert slack.called(method), f"{method} was not called"
    no_errors_logged(caplog)


async def test_the_405_plain_text_lookup_example(signed: Signed, slack: SlackStandin, bot_runtime: Any,
                                                 caplog: Any) -> None:
    """The issue's example, spelled out: a proxy answers users.lookupByEmail with a plain-text 405."""
    slack.members["bob@example.com"] = "UBOB"
    slack.shapes["users.lookupByEmail"] = "not_json"
    await signed.command("link bob@example.com")
    reply = (await slack.wait_for_responses(1))[0]
    assert reply["text"] == (
        "Connect link for bob@example.com ready for you to pass on (I could not check whether they are in this "
        "Slack workspace: users.lookupByEmail got an answer that is not from Slack's API (HTTP 405, not Slack's "
        "JSON); a proxy between FitGlue and Slack may be in the way)")
    assert "something unexpected went wrong" not in everything(reply)
    assert LINK.search(everything(reply["blocks"]))
    assert slack.called("conversations.open") == [] and slack.called("chat.postMessage") == []
    no_errors_logged(caplog)


async def test_slack_unreachable(aiohttp_client: Any, bot_runtime: Any, slack: SlackStandin, caplog: Any) -> None:
    """Nothing listens at SLACK_API_URL: the link still reaches the agent, with the reason."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    # slack_sdk retries a refused connection once, after 0.5-1.5 s: leave room for that.
    bot_runtime.settings = bot_runtime.settings.replaced(slack_timeout_s=10.0,
                                               slack_api_url=f"http://127.0.0.1:{closed_port}/api/")
    app = build_app(bot_runtime, background=False)
    await wire_optional_parts(app, bot_runtime)
    signed = Signed(await aiohttp_client(app), slack)
    response, _ = await signed.command("link bob@example.com")
    assert response.status == 200
    reply = (await slack.wait_for_responses(1, timeout=10))[0]
    assert reply["text"].startswith("Connect link for bob@example.com ready for you to pass on (I could not check "
                                    "whether they are in this Slack workspace: FitGlue could not reach Slack for "
                                    "users.lookupByEmail (ClientConnectorError"), reply["text"]
    assert LINK.search(everything(reply["blocks"]))
    no_errors_logged(caplog)


@pytest.mark.parametrize("shape", list(FAILURE_SHAPES))
async def test_commands_do_not_wait_on_auth_test(shape: str, signed: Signed, slack: SlackStandin,
                                                 caplog: Any) -> None:
    """Bolt's own auth.test used to run before the first ack; failing, it told the agent to reinstall
    the app (for a 503 or a timeout too) and logged an ERROR. The configured token needs no look-up."""
    slack.shapes["auth.test"] = shape
    response, elapsed = await signed.command("diagnose nobody@example.com")
    assert response.status == 200 and elapsed < ACK_BUDGET_S
    assert "reinstall" not in await response.text()
    reply = (await slack.wait_for_responses(1))[0]
    assert reply["text"].startswith("nobody@example.com — Strava: "), reply["text"]
    assert slack.called("auth.test") == []
    no_errors_logged(caplog)


async def test_rate_limited_group_lookup_is_not_repeated_before_retry_after(slack: SlackStandin) -> None:
    now = [1000.0]
    access = AccessList([GROUP], monotonic=lambda: now[0])
    client = AsyncWebClient(token=BOT_TOKEN, base_url=f"{slack.base_url}/api/")
    slack.shapes["usergroups.users.list"] = "rate_limited"
    verdict = await access.allows(GROUP_MEMBER, client)
    assert not verdict and verdict.problem == (f"I could not check the user group {GROUP} with Slack: Slack is "
                                               f"rate-limiting usergroups.users.list; try again in {RETRY_AFTER_S} s")
    now[0] += RETRY_AFTER_S - 1
    verdict = await access.allows(GROUP_MEMBER, client)
    assert not verdict and verdict.problem and verdict.problem.endswith("try again in 1 s")
    assert len(slack.called("usergroups.users.list")) == 1
    now[0] += 1
    slack.shapes.clear()
    assert await access.allows(GROUP_MEMBER, client)
    assert len(slack.called("usergroups.users.list")) == 2


async def test_a_resolution_that_cannot_be_posted_keeps_the_incident(service: Any, bot_runtime: Any,
                                                                     slack: SlackStandin) -> None:
    sink = bot_runtime.alerts
    assert isinstance(sink, IncidentAlerts) and isinstance(sink.poster, SlackAlerts)
    await sink.alert("budget_high", "Strava API budget at 95%")
    slack.shapes["chat.postMessage"] = "server_error"
    await sink.resolve("budget_high")
    assert await sink.open_incidents() == ["budget_high"], "the channel was never told it cleared"
    slack.shapes.clear()
    await sink.resolve("budget_high")
    assert await sink.open_incidents() == []
    assert slack.called("chat.postMessage")[-1].params["text"] == "FitGlue alert resolved (budget high)"


async def test_a_failing_alert_post_does_not_stop_the_alert_check(service: Any, bot_runtime: Any,
                                                                  slack: SlackStandin) -> None:
    from service.background.alert_checks import check_alerts

    assert bot_runtime.ledger is not None
    await bot_runtime.ledger.after_response("GET", "/athlete", 200, {
        "X-RateLimit-Limit": "200,2000", "X-RateLimit-Usage": "195,700",
        "X-ReadRateLimit-Limit": "100,1000", "X-ReadRateLimit-Usage": "20,300"})
    slack.shapes["chat.postMessage"] = "not_json"
    await check_alerts(bot_runtime)  # raised AttributeError before
    assert await bot_runtime.alerts.open_incidents() == []
    slack.shapes.clear()
    await check_alerts(bot_runtime)
    assert await bot_runtime.alerts.open_incidents() == ["budget_high"]


async def test_a_reply_slack_will_not_take_is_logged_without_a_traceback(signed: Signed, slack: SlackStandin,
                                                                         caplog: Any) -> None:
    slack.expired_responses.add("gone")
    response, _ = await signed.command("diagnose nobody@example.com", response="gone")
    assert response.status == 200
    seen = await logged(caplog, "/fitglue diagnose: the response URL refused the reply")
    assert seen.endswith("(HTTP 404: expired_url)")
    no_errors_logged(caplog)


async def test_a_reply_with_a_link_is_not_resent_where_the_response_url_redirects(signed: Signed, slack: SlackStandin,
                                                                                 caplog: Any) -> None:
    """The reply to `/fitglue link` for a user outside the workspace carries their Connect link. Bolt's
    respond() followed a 307 from the response URL and posted the link again to its Location; a
    redirect is now refused like the bulk run's upload and progress posts (e70cc14)."""
    slack.redirect_responses.add("moved")
    response, _ = await signed.command("link carol@example.com", response="moved")
    assert response.status == 200
    seen = await logged(caplog, "/fitglue link: the response URL refused the reply")
    assert "(HTTP 307" in seen and "connect/strava" not in seen
    assert slack.collected == [] and slack.responses == []
    no_errors_logged(caplog)


@pytest.mark.parametrize(("status", "data", "headers", "shape", "error", "retry_after"), [
    (200, {"ok": False, "error": "channel_not_found"}, {}, REFUSED, "channel_not_found", None),
    (200, {"ok": False}, {}, REFUSED, "no_error_given", None),
    (404, {"ok": False, "error": "unknown_method"}, {}, REFUSED, "unknown_method", None),
    (429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "7"}, RATE_LIMITED, "ratelimited", 7),
    (429, {}, {"Retry-After": "²"}, RATE_LIMITED, None, None),
    (429, "Too Many Requests", {"Retry-After": "99999999"}, RATE_LIMITED, None, None),
    (200, {"ok": False, "error": "ratelimited"}, {}, RATE_LIMITED, "ratelimited", None),
    (500, {"ok": False, "error": "internal_error"}, {}, SERVER_ERROR, "internal_error", None),
    (502, {}, {}, SERVER_ERROR, None, None),
    (503, "upstream connect error", {}, SERVER_ERROR, None, None),
    (405, "Method Not Allowed", {}, NOT_JSON, None, None),
    (403, {}, {}, NOT_JSON, None, None),
    (200, None, {}, NOT_JSON, None, None),
])
def test_classify(status: int, data: Any, headers: dict[str, str], shape: str, error: str | None,
                  retry_after: int | None) -> None:
    failed = classify("chat.postMessage", status, data, headers)
    assert (failed.shape, failed.error, failed.status, failed.retry_after_s) == (shape, error, status, retry_after)
    assert "chat.postMessage" in failed.reason


def test_every_shape_has_words() -> None:
    from bot.slack_api import SHAPES, SlackCallFailed

    reasons = {shape: SlackCallFailed("views.publish", shape, timeout_s=2, cause="ClientConnectorError").reason
               for shape in SHAPES}
    assert reasons[TIMEOUT] == "Slack did not answer views.publish within 2 s"
    assert reasons[UNREACHABLE].startswith("FitGlue could not reach Slack for views.publish (ClientConnectorError)")
    assert len(set(reasons.values())) == len(SHAPES)
