"""The daily digest in FITGLUE_ALERT_CHANNEL: new problems with their top reasons and the command
that lists the users, the Strava budget peaks, webhook traffic, and agent actions."""

from __future__ import annotations

from typing import Any

from bot.blocks import Block, Reply, context, escape, header, section, slack_date

FINDING_WORDS = {"needs_reauth": "need re-authorization", "revoked": "revoked access",
                 "missing_permissions": "connected without every permission",
                 "authorization_failed": "failed to connect"}


def _new_line(item: dict[str, Any]) -> str:
    finding, count = str(item.get("finding")), int(item.get("count") or 0)
    line = f"• *{count}* {escape(FINDING_WORDS.get(finding, finding))} (`{escape(finding)}`)"
    reasons = [f"{escape(str(r))} ({n})" for r, n in item.get("top_reasons") or []]
    if reasons:
        line += " — top reasons: " + "; ".join(reasons)
    if count:
        line += f" — list them: `{escape(str(item.get('command')))}`"
    return line


def digest(data: dict[str, Any]) -> Reply:
    """`data` is service.background.digest.gather_digest's dict."""
    new = list(data.get("new") or [])
    hooks = data.get("webhooks") or {}
    actions = data.get("agent_actions") or {}
    peaks = data.get("budget_peaks") or {}
    blocks: list[Block] = [header(f"FitGlue daily digest — {data.get('day')}"),
                           section("*New in the last 24 hours*\n" + "\n".join(_new_line(i) for i in new))]
    peak_text = " · ".join(f"{escape(str(k))} {v}%" for k, v in peaks.items()) or "no Strava usage seen"
    blocks.append(section(f"*Strava budget, peak use per window:* {peak_text}"))
    waiting = hooks.get("oldest_waiting")
    blocks.append(section(f"*Webhook events:* {hooks.get('received', 0)} received, {hooks.get('processed', 0)} "
                          f"processed; oldest still waiting: {slack_date(waiting, 'none')}"))
    top = ", ".join(f"{escape(str(a))} {n}" for a, n in actions.get("top") or [])
    blocks.append(section(f"*Agent actions:* {actions.get('count', 0)}" + (f" ({top})" if top else "")))
    blocks.append(context([f"From {slack_date(data.get('from'))} to {slack_date(data.get('to'))}. Local state "
                           "only; the slash commands list the users."]))
    counts = ", ".join(f"{i.get('count')} {i.get('finding')}" for i in new)
    return Reply(f"FitGlue daily digest for {data.get('day')}: {counts}", blocks)
