"""Rendering and parsing without Slack: plain data in, blocks out."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot import render
from bot.blocks import MAX_SECTION_TEXT, clip
from bot.commands import Command, Malformed, parse
from tests.bot.helpers import assert_valid_blocks
from troubleshooting import ConnectionFacts, Diagnosis, Finding, diagnose


@pytest.mark.parametrize(("text", "expected"), [
    ("diagnose alice@example.com", Command("diagnose", "alice@example.com")),
    ("  DIAGNOSE   <mailto:Alice@Example.com|Alice@Example.com> ", Command("diagnose", "Alice@Example.com")),
    ("diagnose <mailto:a@b.co>", Command("diagnose", "a@b.co")),
    ("diagnose 123456", Command("diagnose", "123456")),
    ("link bob@example.com", Command("link", "bob@example.com")),
    ("refresh <mailto:bob@example.com|bob@example.com>", Command("refresh", "bob@example.com")),
    ("webhook", Command("webhook_status")),
    ("webhook status", Command("webhook_status")),
    ("webhook register", Command("webhook_register")),
    ("ratelimit", Command("ratelimit")),
    ("help", Command("help")),
    ("", Command("help")),
    ("what is this", Command("help")),
])
def test_parse(text: str, expected: Command) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize(("text", "name"), [
    ("diagnose", "diagnose"), ("diagnose bob", "diagnose"), ("diagnose a@b.c d@e.f", "diagnose"),
    ("link", "link"), ("link bob", "link"), ("refresh <mailto:nope|nope>", "refresh"),
    ("webhook delete", "webhook"), ("webhook register now", "webhook"),
])
def test_malformed_says_what_and_how(text: str, name: str) -> None:
    parsed = parse(text)
    assert isinstance(parsed, Malformed) and parsed.name == name
    assert "Usage:" in parsed.message and "/fitglue" in parsed.message


def test_clip_never_cuts_an_entity_or_escape_in_half() -> None:
    text = "x" * 95 + "<@U12345>" + "y" * 50
    assert clip(text, 100) == "x" * 95 + "…"
    text = "x" * 96 + "&amp;" + "y" * 50
    assert clip(text, 100) == "x" * 96 + "…"
    assert len(clip("z" * 5000, MAX_SECTION_TEXT)) == MAX_SECTION_TEXT


def huge_diagnosis() -> Diagnosis:
    findings = tuple(
        Finding(id="rate_limited", severity="warning", title=f"Finding {n} " + "t" * 200, detail="<d&>" * 3000,
                remedy=tuple("step " * 400 for _ in range(10)), actions=("send_connect_link", "refresh_token",
                                                                         "reregister_webhook"),
                article="#rate-limiting", audience="support")
        for n in range(120))
    facts = {"who": "big@example.com", "athlete_id": 42, "granted_scopes": ["read"] * 500,
             "token_expires_at": "2026-11-27T15:00:00Z", "last_refresh_at": "2026-11-27T14:00:00Z",
             "last_refresh_error": "e" * 5000, "last_refresh_error_at": "2026-11-27T14:00:00Z",
             "status": "connected", "last_event_at": None}
    return Diagnosis("big@example.com" + "m" * 200, 42, "connected", findings, facts)


def test_huge_diagnosis_respects_block_kit_limits() -> None:
    reply = render.diagnosis(huge_diagnosis(), note=render.failure("x" * 10_000))
    message = reply.as_kwargs()
    assert_valid_blocks(message)
    assert len(message["blocks"]) <= 50 and len(message["text"]) <= 3000
    assert message["blocks"][-1]["type"] == "actions"  # the buttons survive the cut
    assert "more findings than fit here" in str(message["blocks"])
    for block in message["blocks"]:
        if block["type"] == "section":
            assert len(block["text"]["text"]) <= 3000


def test_real_diagnosis_blocks() -> None:
    now = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)
    diag = diagnose(ConnectionFacts(now=now, who="eve@example.com", email="eve@example.com",
                                    status="needs_reauth", athlete_id=7, status_changed_at=now))
    reply = render.diagnosis(diag)
    assert_valid_blocks(reply.as_kwargs())
    assert reply.text.startswith("eve@example.com — Strava: needs re-authorization")
    assert reply.blocks[0]["text"]["text"] == "eve@example.com — Strava: needs re-authorization"
    buttons = [e for b in reply.blocks if b["type"] == "actions" for e in b["elements"]]
    assert ("send_connect_link", "eve@example.com") in [(b["action_id"], b["value"]) for b in buttons]
    finding = reply.blocks[1]["text"]["text"]
    assert finding.startswith(":") and "*What to do*" in finding


def test_rate_limits_before_any_header() -> None:
    window = {"limit": 100, "usage": None, "resets_at": "2026-11-27T14:15:00Z"}
    reply = render.rate_limits({"overall": {"15min": window, "daily": window}, "read": {"15min": window},
                                "observed_at": None, "queued_jobs": 1})
    assert_valid_blocks(reply.as_kwargs())
    assert "no calls seen yet" in str(reply.blocks) and "1 queued" in reply.text


def test_home_view_fits_a_home_tab() -> None:
    summary = {"generated_at": "2026-11-27T14:00:00Z",
               "connections_by_status": {"connected": 3, "needs_reauth": 200},
               "needs_reauth": [{"email": f"u{n}@example.com", "since": None} for n in range(10)],
               "needs_reauth_total": 200,
               "recent_actions": [{"at": None, "actor": "slack:U1", "action": "refresh_token", "target": "a@b.c",
                                   "result": "ok"}]}
    view = render.home_view(summary, None, None)
    assert_valid_blocks({"text": "home", "blocks": view["blocks"]}, limit=100)
    assert "… and 190 more" in str(view["blocks"]) and "<@U1>" in str(view["blocks"])
