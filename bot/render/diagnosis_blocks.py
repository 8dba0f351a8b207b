"""A diagnosis as a Slack reply: a header, one section per finding, the facts, and the findings'
actions as buttons (whose `value` is the target, so the handlers hold no state)."""

from __future__ import annotations

from typing import Any

from bot.blocks import (
    MAX_MESSAGE_BLOCKS,
    Block,
    Reply,
    actions,
    button,
    confirm_dialog,
    context,
    divider,
    escape,
    fit,
    header,
    section,
    slack_date,
)
from bot.commands import is_email
from bot.render.history_blocks import history_button
from troubleshooting import ACTIONS, STATUS_TEXT, Diagnosis, summary_line

SEVERITY_MARK = {"error": ":red_circle:", "warning": ":large_orange_circle:", "info": ":information_source:",
                 "ok": ":white_check_mark:"}


BUTTON_TEXT = {"send_connect_link": "Send Connect link", "reregister_webhook": "Re-register webhook",
               "refresh_token": "Refresh token now", "retry_events": "Retry events"}
ACTIONS_BLOCK_ID = "fitglue_actions"


# ---------------------------------------------------------------------------------------------
# buttons


def action_button(action_id: str, target: str) -> dict[str, Any]:
    """The buttons' `value` is the target e-mail (or athlete id): the handlers hold no state."""
    if action_id == "reregister_webhook":
        dialog = confirm_dialog(
            "Re-register the Strava webhook?",
            "This deletes FitGlue's Strava push subscription if it is wrong and creates a new one. It affects "
            "every FitGlue user, and events sent while it is being replaced may be missed.",
            "Re-register")
        return button(BUTTON_TEXT[action_id], action_id, target, style="danger", confirm=dialog)
    style = "primary" if action_id == "send_connect_link" else None
    return button(BUTTON_TEXT[action_id], action_id, target, style=style)


def _buttons(wanted: list[str], email: str | None, who: str) -> list[dict[str, Any]]:
    out = []
    for action_id in ACTIONS:  # stable order, each once
        if action_id not in wanted:
            continue
        if action_id == "send_connect_link" and email is None:
            continue  # an unknown athlete id has no address to send a link to
        out.append(action_button(action_id, email or who))
    return out


def _finding_text(finding: dict[str, Any]) -> str:
    mark = SEVERITY_MARK.get(finding["severity"], ":grey_question:")
    lines = [f"{mark} *{escape(finding['title'])}*", escape(finding["detail"])]
    steps = finding.get("remedy") or []
    if steps:
        lines.append("*What to do*")
        lines += [f"{n}. {escape(step)}" for n, step in enumerate(steps, 1)]
    return "\n".join(lines)


def _facts_line(facts: dict[str, Any]) -> list[str]:
    out = []
    if facts.get("athlete_id") is not None:
        out.append(f"Athlete *{facts['athlete_id']}*")
    scopes = facts.get("granted_scopes")
    if scopes is not None:
        out.append("Scopes: " + (", ".join(f"`{escape(s)}`" for s in scopes) or "none"))
    if facts.get("token_expires_at"):
        out.append(f"Token expires {slack_date(facts['token_expires_at'])}")
    if facts.get("last_refresh_at") or facts.get("last_refresh_error"):
        text = f"Last refresh {slack_date(facts.get('last_refresh_at'))}"
        if facts.get("last_refresh_error"):
            text += f" · last error {slack_date(facts.get('last_refresh_error_at'), 'at an unknown time')}: " \
                    f"{escape(str(facts['last_refresh_error']))}"
        out.append(text)
    if facts.get("status") not in (None, "unknown_user"):
        out.append(f"Last webhook event {slack_date(facts.get('last_event_at'))}")
    return out


def diagnosis(diag: Diagnosis, note: Reply | None = None) -> Reply:
    """Header (who + status), an optional note (what a button just did), one section per finding,
    a context line of facts, and the findings' actions as buttons."""
    data = diag.to_dict()
    who = data["email"] or str(data["facts"].get("who") or data["athlete_id"] or "unknown")
    status = data["status"]
    blocks: list[Block] = [header(f"{who} — Strava: {STATUS_TEXT.get(status, status)}")]
    if note is not None:
        blocks += [*note.blocks, divider()]
    for finding in data["findings"]:
        blocks.append(section(_finding_text(finding)))
    facts = _facts_line(data["facts"])
    if facts:
        blocks.append(context(facts))
    wanted = [a for f in data["findings"] for a in f.get("actions", [])]
    # An unknown user asked about by e-mail can still be sent a link (issuing it creates the account).
    email = data["email"] or (who if is_email(who) else None)
    buttons = _buttons(wanted, email, who)
    if status != "unknown_user":
        buttons.append(history_button(email or who))
    if buttons:
        blocks.append(actions(ACTIONS_BLOCK_ID, buttons))
    overflow = f"… more findings than fit here: run `fitglue diagnose {who} --json` for the full list."
    text = summary_line(diag)
    if note is not None:
        text = f"{note.text} · {text}"
    return Reply(text, fit(blocks, MAX_MESSAGE_BLOCKS, overflow))
