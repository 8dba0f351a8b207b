"""Every interactive element the bot can post is acknowledged.

The walk renders every message and view `bot.render` can produce (every finding and its variants,
every status, every webhook state, with and without a note), finds every element a person can click,
and clicks each one through the real `/slack/events` route with a signed `block_actions` payload —
as the person who would see it. A new button without a listener gets Bolt's 404 "unhandled request"
and fails here; so does a new renderer missing from SAMPLES.
"""

from __future__ import annotations

import importlib
import inspect
import json
import logging
import pkgutil
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from sqlalchemy import select

from bot import render
from bot.blocks import Reply, actions
from bot.interactive import ACTION_IDS, AGENT_ACTIONS, OPEN_CONNECT_LINK, URL_BUTTONS
from service.db.models import AuditEntry
from tests.bot.conftest import AGENT, OUTSIDER, Signed
from tests.bot.helpers import ACK_BUDGET_S, assert_valid_blocks
from troubleshooting import FINDING_IDS, STATUSES, Diagnosis, Finding, load_knowledge

# Block Kit elements a person can act on (each sends block_actions, or a view submission).
INTERACTIVE_TYPES = {"button", "static_select", "external_select", "users_select", "conversations_select",
                     "channels_select", "multi_static_select", "multi_users_select", "overflow", "datepicker",
                     "timepicker", "datetimepicker", "checkboxes", "radio_buttons", "plain_text_input",
                     "email_text_input", "url_text_input", "number_input", "rich_text_input"}

ISSUED = {"email": "bob@example.com", "url": "http://localhost:8080/connect/strava?t=abc.def",
          "expires_at": "2026-12-04T14:00:00Z", "created_user": True}
WINDOW = {"limit": 100, "usage": 95, "resets_at": "2026-11-27T14:15:00Z"}
RATE = {"overall": {"15min": WINDOW, "daily": WINDOW}, "read": {"15min": WINDOW, "daily": {**WINDOW, "usage": None}},
        "observed_at": "2026-11-27T14:00:00Z", "queued_jobs": 2}
SUBSCRIBED = {"subscription": {"id": 7, "callback_url": "http://localhost:8080/webhooks/strava"},
              "callback_matches": True, "last_event_at": None, "last_registration": None}
HOOKS = [
    {"subscription": None, "callback_matches": None, "last_event_at": None, "last_registration": None},
    {**SUBSCRIBED, "callback_matches": False},
    SUBSCRIBED,
    {**SUBSCRIBED, "steps": [{"step": "list", "ok": True, "description": "listed"}, "created subscription 7"],
     "last_registration": {"at": "2026-11-27T14:00:00Z", "outcome": "ok", "error": None}},
    {"subscription": None, "callback_matches": None, "last_event_at": None, "steps": [],
     "last_registration": {"at": "2026-11-27T14:00:00Z", "outcome": "failed", "error": "callback unreachable"}},
]
SUMMARY = {"generated_at": "2026-11-27T14:00:00Z", "connections_by_status": {"connected": 1, "needs_reauth": 1},
           "needs_reauth": [{"email": "eve@example.com", "since": None}], "needs_reauth_total": 1,
           "recent_actions": [{"at": None, "actor": "slack:U1", "action": "refresh_token", "target": "a@b.c",
                               "result": "ok"}]}


PAGE = {"entries": [{"at": "2026-11-27T14:00:00Z", "kind": "status_changed", "summary": "status connected → revoked",
                     "article": "#revoking-access", "status": "revoked"}], "next_before": "1764252000000000-4-7"}


AFFECTED = {"finding": "needs_reauth", "count": 30, "since": "2026-11-26T00:00:00Z",
            "users": [{"email": "eve@example.com", "athlete_id": 5, "since": "2026-11-27T08:00:00Z",
                       "last_change": "2026-11-27T08:00:00Z"}], "by_day": [{"date": "2026-11-27", "count": 30}]}
DIGEST = {"day": "2026-11-27", "from": "2026-11-26T08:00:00Z", "to": "2026-11-27T08:00:00Z",
          "new": [{"finding": "needs_reauth", "count": 3, "top_reasons": [["grant gone", 3]],
                   "command": "/fitglue affected needs_reauth"}],
          "budget_peaks": {"overall 15min": 85}, "webhooks": {"received": 10, "processed": 9, "oldest_waiting": None},
          "agent_actions": {"count": 4, "top": [["issue_connect_link", 4]]}}


def findings() -> Iterator[Finding]:
    """Every finding the knowledge can produce, each variant included."""
    knowledge = load_knowledge()
    for finding_id in FINDING_IDS:
        entry = knowledge[finding_id]
        for variant in (None, *entry.variants):
            e = entry.resolved(variant)
            yield Finding(e.id, e.severity, e.title, e.detail, e.remedy, e.actions, e.article, e.audience)


def diagnoses() -> Iterator[Diagnosis]:
    every = tuple(findings())
    for status in STATUSES:
        for finding in every:
            yield Diagnosis("alice@example.com", 123, status, (finding,), {"who": "alice@example.com"})
            yield Diagnosis(None, 456, status, (finding,), {"who": "456"})  # asked about by athlete id
        yield Diagnosis(None, None, status, every, {"who": "carol@example.com"})  # an unknown e-mail


def notes() -> list[Reply]:
    return [render.link_sent(ISSUED, "UBOB"), render.link_for_agent(ISSUED, "they are not a member"),
            render.refresh_result({"email": "alice@example.com", "status": "connected", "refreshed": True}),
            render.webhook(HOOKS[3]), render.failure("x")]


# Every public renderer -> what it renders for every state it handles.
SAMPLES: dict[str, list[Reply | dict[str, Any]]] = {
    "diagnosis": [*(render.diagnosis(d) for d in diagnoses()),
                  *(render.diagnosis(next(diagnoses()), note=n) for n in notes())],
    "action_button": [Reply("buttons", [actions("fitglue_actions", [render.action_button(a, t) for a in AGENT_ACTIONS])])
                      for t in ("alice@example.com", "456", "")],
    "link_dm": [render.link_dm(ISSUED)],
    "link_sent": [render.link_sent(ISSUED, "UBOB")],
    "link_for_agent": [render.link_for_agent(ISSUED, "they are not a member of this Slack workspace")],
    "refresh_result": [render.refresh_result({"email": "alice@example.com", "status": s, "refreshed": r,
                                              "expires_at": None, "error": None if r else "Strava said no"})
                       for s in STATUSES for r in (True, False)],
    "webhook": [render.webhook(h) for h in HOOKS],
    "events_retried": [render.events_retried("alice@example.com", {"retried": n}) for n in (0, 3)],
    "rate_limits": [render.rate_limits(RATE)],
    "help_message": [render.help_message(), render.help_message("Which user?")],
    "refusal": [render.refusal(OUTSIDER), render.refusal(OUTSIDER, "Slack did not answer")],
    "working": [render.working("diagnosing alice@example.com")],
    "failure": [render.failure("no such user")],
    "alert": [render.alert("budget_high", "Strava API budget at 95%")],
    "alert_resolved": [render.alert_resolved("budget_high")],
    "home_view": [render.home_view(SUMMARY, RATE, SUBSCRIBED), render.home_view(SUMMARY, None, None),
                  *(render.home_view({**SUMMARY, "outbound": {"pending": 4, "failed": f, "oldest_pending_age_s": age,
                                                              "last_success_at": last}}, None, None)
                    for f, age, last in ((0, None, None), (2, 30, "2026-11-27T13:00:00Z"), (1, 9000, None)))],
    "home_refusal": [render.home_refusal(OUTSIDER), render.home_refusal(OUTSIDER, "Slack did not answer")],
    "history": [render.history("alice@example.com", PAGE), render.history("456", {"entries": [], "next_before": None},
                                                                          older=True)],
    "affected": [render.affected(AFFECTED), render.affected({**AFFECTED, "finding": "webhook_silent"}),
                 render.affected({"finding": "revoked", "count": 0, "since": None, "users": [], "by_day": []})],
    "bulk_progress": [render.bulk_progress("revoked", 3, 6, {"sent": 2, "skipped": 1, "failed": 0}),
                      render.bulk_progress("revoked", 6, 6, {"sent": 5, "skipped": 1, "to_file": 2}, final=True)],
    "digest": [render.digest(DIGEST), render.digest({})],
    "history_button": [Reply("button", [actions("fitglue_actions", [render.history_button("alice@example.com")])])],
}


def blocks_of(sample: Reply | dict[str, Any]) -> list[dict[str, Any]]:
    return sample.blocks if isinstance(sample, Reply) else sample["blocks"]


def interactive_elements(value: Any, block_id: str | None = None) -> Iterator[tuple[str | None, dict[str, Any]]]:
    """(block_id, element) for every interactive element, wherever it sits in a block."""
    if isinstance(value, dict):
        block_id = value.get("block_id", block_id)
        if value.get("type") in INTERACTIVE_TYPES or "action_id" in value:
            yield block_id, value
        for child in value.values():
            yield from interactive_elements(child, block_id)
    elif isinstance(value, list):
        for child in value:
            yield from interactive_elements(child, block_id)


def every_element() -> dict[tuple[str, str, bool], tuple[str | None, dict[str, Any]]]:
    """One of each (action_id, value, is a URL button) the renderers produce."""
    found: dict[tuple[str, str, bool], tuple[str | None, dict[str, Any]]] = {}
    for samples in SAMPLES.values():
        for sample in samples:
            for block_id, element in interactive_elements(blocks_of(sample)):
                key = (element.get("action_id", ""), element.get("value", ""), "url" in element)
                found.setdefault(key, (block_id, element))
    return found


def test_samples_cover_every_renderer() -> None:
    """A renderer added to bot.render without samples here fails: its buttons would go unclicked."""
    modules = [importlib.import_module(f"{render.__name__}.{m.name}") for m in pkgutil.iter_modules(render.__path__)]
    renderers = {name for module in modules for name, fn in inspect.getmembers(module, inspect.isfunction)
                 if fn.__module__ == module.__name__ and not name.startswith("_")
                 and inspect.signature(fn).return_annotation in ("Reply", "dict[str, Any]")}
    assert renderers == set(SAMPLES)


def test_every_sample_is_valid_block_kit() -> None:
    for name, samples in SAMPLES.items():
        for sample in samples:
            text = sample.text if isinstance(sample, Reply) else "view"
            assert_valid_blocks({"text": text, "blocks": blocks_of(sample)}, limit=100 if name.startswith("home")
                                else 50)


def test_every_interactive_element_has_a_registered_action_id() -> None:
    """Slack invents an action_id for an element without one, which no listener could match."""
    found = every_element()
    assert all(action_id for action_id, _value, _url in found), found
    assert {action_id for action_id, _value, _url in found} == set(ACTION_IDS)
    for (action_id, _value, is_url), _ in found.items():
        assert is_url == (action_id in URL_BUTTONS), action_id


def click_body(signed: Signed, block_id: str | None, element: dict[str, Any], user: str, response: str,
               channel: str) -> str:
    action = {"type": element["type"], "action_id": element["action_id"], "block_id": block_id,
              "text": element.get("text"), "action_ts": "1.2"}
    if "value" in element:
        action["value"] = element["value"]
    payload = {
        "type": "block_actions", "team": {"id": "T0TEST"}, "user": {"id": user}, "api_app_id": "A0FITGLUE",
        "token": "legacy", "trigger_id": "1.2.3", "channel": {"id": channel},
        "container": {"type": "message", "is_ephemeral": channel.startswith("C"), "channel_id": channel},
        "response_url": signed.slack.response_url(response), "actions": [action],
    }
    return "payload=" + quote(json.dumps(payload))


async def test_every_element_the_bot_posts_is_acknowledged(signed: Signed, slack: Any, bot_runtime: Any,
                                                           caplog: Any) -> None:
    caplog.set_level(logging.INFO)
    replies = 0
    for n, ((action_id, _value, is_url), (block_id, element)) in enumerate(sorted(every_element().items())):
        # A URL button sits in the user's own DM: the person clicking is the user, not a support agent.
        user, channel = ("UBOB", "DBOB") if is_url else (AGENT, "C0SUPPORT")
        response, elapsed = await signed.post(click_body(signed, block_id, element, user, f"c{n}", channel))
        assert response.status == 200, (action_id, await response.text())
        assert elapsed < ACK_BUDGET_S
        replies += 0 if is_url else 1
    answered = await slack.wait_for_responses(replies, timeout=30)
    assert all(r["response_type"] == "ephemeral" for r in answered)
    unhandled = [r.getMessage() for r in caplog.records
                 if r.name.startswith("slack_bolt") and r.levelno >= logging.WARNING]
    assert unhandled == []
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


async def test_the_connect_button_in_the_dm_is_acknowledged_and_does_nothing(signed: Signed, slack: Any,
                                                                               bot_runtime: Any, caplog: Any) -> None:
    """The issue's example: the user clicks "Connect with Strava" in their DM (Slack opens the URL)."""
    block_id, element = next(interactive_elements(render.link_dm(ISSUED).blocks))
    assert element["action_id"] == OPEN_CONNECT_LINK and element["url"] == ISSUED["url"]
    response, _ = await signed.post(click_body(signed, block_id, element, OUTSIDER, "dm", "DOUTSIDE"))
    assert response.status == 200, await response.text()
    assert "Unhandled request" not in caplog.text
    assert slack.responses == [] and slack.calls == []  # nothing replaced, nothing refused, nothing sent
    async with bot_runtime.sessions() as session:
        assert (await session.execute(select(AuditEntry))).scalars().all() == []


@pytest.mark.parametrize("action_id", AGENT_ACTIONS)
async def test_agent_buttons_stay_behind_the_access_check(action_id: str, signed: Signed, slack: Any) -> None:
    response, _ = await signed.click(action_id, "victim@example.com", user=OUTSIDER)
    assert response.status == 200
    reply = (await slack.wait_for_responses(1))[0]
    assert OUTSIDER in reply["text"] and reply["replace_original"] is False
