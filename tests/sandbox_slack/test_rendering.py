"""Every block the bot's renderers can produce renders on the local Slack's page without error, and no
text reaches the page unescaped; any other block is named as unsupported, never a crash (issue 14)."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot import render
from sandbox_slack.pages import blocks_html
from troubleshooting import ACTIONS, Diagnosis, Finding

HOSTILE = ["<script>alert(1)</script>", "\"'><img src=x onerror=alert(1)>", "&", "&amp;", "<javascript:alert(1)|x>",
           "<https://ok.example/?a=1&b=2|fine>", "*", "_", "~", "`", "```", "<@U123>", "<!here>", ":x:", "\n",
           "<mailto:a@b.example|a@b.example>", "</div>", "{{ 7*7 }}", "{% raw %}"]
texts = st.lists(st.one_of(st.sampled_from(HOSTILE), st.text(max_size=30)), max_size=6).map("".join)

ALLOWED_TAGS = {"div", "span", "strong", "em", "del", "code", "pre", "br", "a", "hr", "form", "input", "button"}


class Checked(HTMLParser):
    """Collects every tag and attribute the page would hold."""

    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in ALLOWED_TAGS:
            self.problems.append(f"tag {tag}")
        for name, value in attrs:
            if name.startswith("on") or name == "style" or name == "src":
                self.problems.append(f"attribute {name}")
            if name == "href" and not (value or "").startswith(("http://", "https://", "mailto:", "/confirm?")):
                self.problems.append(f"href {value}")


def assert_safe(blocks: Any) -> str:
    page = blocks_html(blocks, 7)
    checked = Checked()
    checked.feed(page)
    assert checked.problems == [], (checked.problems, page)
    assert "<script" not in page and "{{" not in page.replace("{{ 7*7 }}", "")
    return page


def replies(t: str) -> list[Any]:
    findings = tuple(Finding(id="not_connected", severity=severity, title=t, detail=t, remedy=(t, t),
                             actions=tuple(ACTIONS), article="#overview", audience="support")
                     for severity in ("error", "warning", "info", "ok"))
    facts = {"who": t, "athlete_id": 42, "granted_scopes": [t, "read"], "token_expires_at": "2026-11-27T15:00:00Z",
             "last_refresh_at": t, "last_refresh_error": t, "last_refresh_error_at": None, "status": "connected",
             "last_event_at": None}
    diag = Diagnosis("a@example.com", 42, "connected", findings, facts)
    issued = {"email": t, "url": "https://fitglue.example/connect/strava?t=abc", "expires_at": "2026-12-01T00:00:00Z",
              "created_user": True}
    window = {"limit": 100, "usage": 99, "resets_at": "2026-11-27T14:15:00Z"}
    hook = {"subscription": {"id": 1, "callback_url": t}, "callback_matches": False, "last_event_at": None,
            "last_registration": {"at": None, "outcome": "failed", "error": t},
            "steps": [{"ok": False, "what": t}, t]}
    summary = {"generated_at": None, "connections_by_status": {t: 1}, "needs_reauth": [{"email": t, "since": t}],
               "needs_reauth_total": 1, "recent_actions": [{"at": None, "actor": t, "action": t, "target": t,
                                                            "result": t}]}
    messages = [render.diagnosis(diag, note=render.failure(t)), render.help_message(t), render.refusal(t, t),
                render.working(t), render.failure(t), render.alert(t, t), render.alert_resolved(t),
                render.link_dm(issued), render.link_sent(issued, "U1"), render.link_for_agent(issued, t),
                render.refresh_result({"email": t, "status": t, "refreshed": False, "error": t}),
                render.webhook(hook), render.rate_limits({"overall": {"15min": window, "daily": window},
                                                          "read": {"15min": window, "daily": window},
                                                          "observed_at": t, "queued_jobs": 3})]
    # Issue 13's replies (history, affected, bulk progress, digest) and issue 12's events reply.
    page = {"entries": [{"at": "2026-11-27T14:00:00Z", "kind": "status_changed", "summary": t, "article": "#overview"},
                        {"at": "2026-11-27T13:00:00Z", "kind": "agent_action", "summary": t, "article": None}],
            "next_before": "1764252000000000-4-7"}
    report = {"finding": "needs_reauth", "count": 30, "since": "2026-11-26T00:00:00Z",
              "users": [{"email": t, "athlete_id": 5, "since": "2026-11-27T08:00:00Z", "last_change": t}],
              "by_day": [{"date": "2026-11-27", "count": 30}]}
    digest = {"day": "2026-11-27", "from": "2026-11-26T08:00:00Z", "to": "2026-11-27T08:00:00Z",
              "new": [{"finding": "needs_reauth", "count": 3, "top_reasons": [[t, 3]],
                       "command": "/fitglue affected needs_reauth"}],
              "budget_peaks": {"overall 15min": 85}, "webhooks": {"received": 10, "processed": 9, "oldest_waiting": t},
              "agent_actions": {"count": 4, "top": [[t, 4]]}}
    messages += [render.history(t, page), render.history(t, {"entries": [], "next_before": None}, older=True),
                 render.affected(report), render.bulk_progress("revoked", 3, 6, {"sent": 2, "skipped": 1}),
                 render.bulk_progress("revoked", 6, 6, {"sent": 5, "failed": 1}, final=True), render.digest(digest),
                 render.events_retried(t, {"retried": 3})]
    return [m.blocks for m in messages] + [render.home_view(summary, None, hook)["blocks"],
                                           render.home_refusal(t, t)["blocks"]]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts)
def test_every_block_our_renderers_produce_renders_safely(t: str) -> None:
    for blocks in replies(t):
        page = assert_safe(blocks)
        assert "unsupported" not in page  # the page covers everything the bot sends


json_values = st.recursive(st.none() | st.booleans() | st.integers() | texts,
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                                       max_size=4), max_leaves=12)
block_like = st.fixed_dictionaries({"type": st.one_of(st.sampled_from(["section", "context", "header", "actions",
                                                                        "divider", "image", "input", "rich_text"]),
                                                       texts)},
                                   optional={"text": json_values, "fields": json_values, "elements": json_values,
                                             "block_id": json_values})


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(block_like, json_values), max_size=5))
def test_any_blocks_at_all_render_without_error(blocks: list[Any]) -> None:
    page = assert_safe(blocks)
    for block in blocks:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind in ("image", "input", "rich_text"):
            assert f"unsupported block {kind}" in page


def test_unsupported_block_is_named() -> None:
    page = blocks_html([{"type": "image", "image_url": "https://x/y.png", "alt_text": "x"}])
    assert "unsupported block image" in page


def test_bold_and_italic_may_hold_inline_code_as_in_slack() -> None:
    """The bulk run's report opens with `*Connect links for `needs_reauth`: done.*`: Slack shows it bold
    with the code inside; the local Slack showed the asterisks, each half styled on its own."""
    from sandbox_slack.mrkdwn import to_html

    assert str(to_html("*Connect links for `needs_reauth`: done.*")) == \
        "<strong>Connect links for <code>needs_reauth</code>: done.</strong>"
    assert str(to_html("_see `a*b` and `<i>`_")) == "<em>see <code>a*b</code> and <code>&lt;i&gt;</code></em>"
    # Text holding the private-use characters a code span is stood in by stays text, never a code span.
    assert str(to_html("\ue0000\ue001 `x`")) == "\ufffd0\ufffd <code>x</code>"
