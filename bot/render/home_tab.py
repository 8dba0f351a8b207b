"""The App Home tab: budgets, the push subscription, connections by status, who must connect again,
and the last agent actions; or the refusal for someone not on the support list."""

from __future__ import annotations

from typing import Any

from bot.blocks import (
    MAX_HOME_BLOCKS,
    Block,
    context,
    divider,
    escape,
    fields,
    fit,
    header,
    section,
    slack_date,
)
from bot.commands import COMMAND
from bot.render.diagnosis_blocks import SEVERITY_MARK
from bot.render.notices import refusal
from bot.render.operation_replies import rate_limits, subscription_state
from troubleshooting import STATUS_TEXT

STATUS_MARK = {"connected": ":white_check_mark:", "needs_reauth": ":warning:", "revoked": ":no_entry:",
               "not_connected": ":heavy_minus_sign:", "unknown_user": ":grey_question:"}


def _home_budgets(rate: dict[str, Any] | None) -> list[Block]:
    if rate is None:
        return [section(":grey_question: Strava API usage is not available.")]
    return rate_limits(rate).blocks[1:]


def _home_webhook(hook: dict[str, Any] | None) -> list[Block]:
    if hook is None:
        return [section(":grey_question: The webhook state is not available.")]
    state, _words = subscription_state(hook)
    return [section(state), context([f"Last event from Strava {slack_date(hook.get('last_event_at'))}"])]


def home_view(summary: dict[str, Any], rate: dict[str, Any] | None, hook: dict[str, Any] | None) -> dict[str, Any]:
    """The App Home dashboard. `summary` is `SupportDesk.home.summary().to_dict()`."""
    blocks: list[Block] = [header("FitGlue · Strava connections")]
    blocks += [section("*Strava API budget*"), *_home_budgets(rate), divider()]
    blocks += [section("*Push subscription*"), *_home_webhook(hook), divider()]
    counts = summary.get("connections_by_status") or {}
    cells = [f"{STATUS_MARK.get(s, '')} *{STATUS_TEXT.get(s, s)}*\n{counts.get(s, 0)}"
             for s in ("connected", "needs_reauth", "revoked", "not_connected")]
    blocks += [section("*Connections*"), fields(cells)]
    waiting = summary.get("needs_reauth") or []
    if waiting:
        lines = [f"• {escape(u['email'])} — since {slack_date(u.get('since'), 'unknown')}" for u in waiting]
        more = summary.get("needs_reauth_total", len(waiting)) - len(waiting)
        if more > 0:
            lines.append(f"• … and {more} more")
        blocks.append(section("*Need to re-authorize*\n" + "\n".join(lines)))
    else:
        blocks.append(section("*Need to re-authorize*\nNobody :tada:"))
    blocks += _home_missing_permissions(summary)
    blocks += [divider(), *_home_outbound(summary.get("outbound"))]
    blocks.append(divider())
    recent = summary.get("recent_actions") or []
    lines = [f"• {slack_date(a.get('at'))} · {_actor(a.get('actor'))} · {escape(str(a.get('action')))}"
             f"{' · ' + escape(str(a['target'])) if a.get('target') else ''} → {escape(str(a.get('result')))}"
             for a in recent]
    blocks.append(section("*Last agent actions*\n" + ("\n".join(lines) if lines else "None yet.")))
    blocks.append(context([f"Updated {slack_date(summary.get('generated_at'))} · `{COMMAND} help` for commands"]))
    return {"type": "home", "blocks": fit(blocks, MAX_HOME_BLOCKS)}


def _home_missing_permissions(summary: dict[str, Any]) -> list[Block]:
    """Connected users whose grant lacks what FitGlue needs: they must connect again, too."""
    lacking = summary.get("missing_permissions") or []
    if not lacking:
        return [section("*Missing Strava permissions*\nNobody :tada:")]
    lines = [f"• {SEVERITY_MARK.get(u.get('severity'), '')} {escape(u['email'])} — without "
             f"{escape(', '.join(u.get('missing') or []))}" for u in lacking]
    more = summary.get("missing_permissions_total", len(lacking)) - len(lacking)
    if more > 0:
        lines.append(f"• … and {more} more")
    return [section("*Missing Strava permissions* (need a new Connect link)\n" + "\n".join(lines))]


def _age(seconds: Any) -> str:
    if seconds is None:
        return "none"
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds} s"
    return f"{seconds // 60} min" if seconds < 7200 else f"{seconds // 3600} h"


def _home_outbound(outbound: dict[str, Any] | None) -> list[Block]:
    """The hand-off to FitGlue's other services: pending, failed, oldest pending age, last success."""
    if outbound is None:
        return [section("*Events to FitGlue's other services*\nOff: `FITGLUE_EVENTS_URL` is not set.")]
    failed = int(outbound.get("failed") or 0)
    mark = ":warning:" if failed else ":white_check_mark:"
    cells = [f"*Pending*\n{outbound.get('pending', 0)}", f"{mark} *Failed (parked)*\n{failed}",
             f"*Oldest pending*\n{_age(outbound.get('oldest_pending_age_s'))}",
             f"*Last delivered*\n{slack_date(outbound.get('last_success_at'), 'never')}"]
    blocks = [section("*Events to FitGlue's other services*"), fields(cells)]
    if failed:
        blocks.append(context([f"`{COMMAND} diagnose WHO` shows whose events are stuck; "
                               "`fitglue events retry --failed` sends them again"]))
    return blocks


def _actor(actor: Any) -> str:
    text = str(actor or "unknown")
    return f"<@{escape(text[6:])}>" if text.startswith("slack:") else escape(text)


def home_refusal(user_id: str, problem: str | None = None) -> dict[str, Any]:
    return {"type": "home", "blocks": [header("FitGlue support"), *refusal(user_id, problem).blocks]}
