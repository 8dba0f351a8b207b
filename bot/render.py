"""Block Kit for every bot reply. Pure functions: plain data in (the SupportDesk results'
`to_dict()` shapes, or a `Diagnosis`), a `Reply` or a view out. Nothing here talks to Slack."""

from __future__ import annotations

from typing import Any

from bot.blocks import (
    MAX_HOME_BLOCKS,
    MAX_MESSAGE_BLOCKS,
    Block,
    Reply,
    actions,
    button,
    confirm_dialog,
    context,
    divider,
    escape,
    fields,
    fit,
    header,
    section,
    slack_date,
)
from bot.commands import COMMAND, is_email
from bot.interactive import OPEN_CONNECT_LINK
from troubleshooting import ACTIONS, STATUS_TEXT, Diagnosis, summary_line

SUPPORT_IDS_VARIABLE = "FITGLUE_SUPPORT_SLACK_IDS"

SEVERITY_MARK = {"error": ":red_circle:", "warning": ":large_orange_circle:", "info": ":information_source:",
                 "ok": ":white_check_mark:"}
STATUS_MARK = {"connected": ":white_check_mark:", "needs_reauth": ":warning:", "revoked": ":no_entry:",
               "not_connected": ":heavy_minus_sign:", "unknown_user": ":grey_question:"}

BUTTON_TEXT = {"send_connect_link": "Send Connect link", "reregister_webhook": "Re-register webhook",
               "refresh_token": "Refresh token now"}
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


# ---------------------------------------------------------------------------------------------
# diagnosis


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
    if buttons:
        blocks.append(actions(ACTIONS_BLOCK_ID, buttons))
    overflow = f"… more findings than fit here: run `fitglue diagnose {who} --json` for the full list."
    text = summary_line(diag)
    if note is not None:
        text = f"{note.text} · {text}"
    return Reply(text, fit(blocks, MAX_MESSAGE_BLOCKS, overflow))


# ---------------------------------------------------------------------------------------------
# Connect links


def link_message_for_user(url: str, expires_at: str | None) -> str:
    """What the user reads: sent by DM, or pasted by the agent."""
    return ("Hi! To connect (or reconnect) FitGlue with your Strava account, open the link below, sign in to "
            "Strava, keep every permission ticked and press Authorize. Strava then brings you back to FitGlue, "
            f"which shows whether it worked.\n{url}\nThe link is just for you and works until "
            f"{_plain_date(expires_at)}.")


def _plain_date(iso: str | None) -> str:
    return iso.replace("T", " ").replace("Z", " UTC") if iso else "it is used"


def link_dm(issued: dict[str, Any]) -> Reply:
    """The direct message to the user themselves."""
    text = link_message_for_user(issued["url"], issued.get("expires_at"))
    blocks = [section(escape(text).replace(escape(issued["url"]), issued["url"])),
              actions("fitglue_connect", [button("Connect with Strava", OPEN_CONNECT_LINK, "",
                                                 style="primary", url=issued["url"])])]
    return Reply(text, blocks)


def link_sent(issued: dict[str, Any], slack_user_id: str) -> Reply:
    created = " (a new FitGlue account was created for them)" if issued.get("created_user") else ""
    note = (f":incoming_envelope: Sent *{escape(issued['email'])}* (<@{slack_user_id}>) a Connect link by "
            f"direct message{created}. It expires {slack_date(issued.get('expires_at'))}.")
    text = f"Sent {issued['email']} a Connect link by direct message{created}"
    return Reply(text, [section(note)])


def link_for_agent(issued: dict[str, Any], why: str) -> Reply:
    """The link goes only to the agent who asked (ephemeral), with a message ready to paste."""
    email = issued["email"]
    created = " A new FitGlue account was created for them." if issued.get("created_user") else ""
    paste = link_message_for_user(issued["url"], issued.get("expires_at"))
    blocks = [
        section(f":link: Connect link for *{escape(email)}* — {escape(why)}, so pass it on yourself."
                f"{created} It expires {slack_date(issued.get('expires_at'))} and works once."),
        section(f"<{issued['url']}|Connect link for {escape(email)}>"),
        section("*Ready to paste to the user:*\n```" + escape(paste) + "```"),
    ]
    return Reply(f"Connect link for {email} ready for you to pass on ({why})", blocks)


# ---------------------------------------------------------------------------------------------
# refresh


def refresh_result(result: dict[str, Any]) -> Reply:
    email = result["email"]
    status = STATUS_TEXT.get(result.get("status", ""), result.get("status", "unknown"))
    if result.get("refreshed"):
        return Reply(f"Refreshed the Strava token for {email}",
                     [section(f":arrows_counterclockwise: Refreshed the Strava token for *{escape(email)}*; it now "
                              f"expires {slack_date(result.get('expires_at'))}.")])
    error = result.get("error") or "no reason given"
    return Reply(f"Refreshing the token for {email} did not work: {error} (status now: {status})",
                 [section(f":x: Refreshing the token for *{escape(email)}* did not work: {escape(error)}. "
                          f"Status now: *{status}*.")])


# ---------------------------------------------------------------------------------------------
# webhook


def _subscription_state(data: dict[str, Any]) -> tuple[str, str]:
    """(mark + words, plain words) for the push subscription."""
    sub = data.get("subscription")
    if not sub:
        return ":x: *No Strava push subscription* — FitGlue hears about no new activities", "no subscription"
    callback = escape(str(sub.get("callback_url")))
    if data.get("callback_matches") is False:
        return (f":warning: Subscription `{sub.get('id')}` points elsewhere: `{callback}`",
                f"subscription {sub.get('id')} points elsewhere")
    return (f":white_check_mark: Subscription `{sub.get('id')}` → `{callback}`",
            f"subscribed (id {sub.get('id')}), callback matches")


def _step_text(step: Any) -> str:
    """A repair step: `{"step", "ok", "description"}` from the SupportDesk, or plain text."""
    if isinstance(step, dict):
        ok = step.get("ok")
        mark = ":white_check_mark:" if ok is True else ":x:" if ok is False else "•"
        return f"{mark} {escape(str(step.get('description') or step.get('step') or step))}"
    return f"• {escape(str(step))}"


def webhook(data: dict[str, Any]) -> Reply:
    """`webhook status`, and `webhook register` (whose result also carries `steps`)."""
    state, words = _subscription_state(data)
    registered = "steps" in data
    last = data.get("last_registration") or {}
    failed = registered and last.get("outcome") == "failed"
    title = "Strava webhook"
    if registered:
        title += " — repair failed" if failed else " — checked and repaired"
    blocks: list[Block] = [header(title)]
    if registered:
        lines = [_step_text(s) for s in data.get("steps") or []] or ["• nothing to do"]
        blocks.append(section("*What I checked and did*\n" + "\n".join(lines)))
    blocks.append(section(state))
    facts = [f"Last event from Strava {slack_date(data.get('last_event_at'))}"]
    if last:
        line = f"Last registration {slack_date(last.get('at'))}: {escape(str(last.get('outcome')))}"
        if last.get("error"):
            line += f" — {escape(str(last['error']))}"
        facts.append(line)
    blocks.append(context(facts))
    healthy = bool(data.get("subscription")) and data.get("callback_matches") is not False
    if not healthy and not registered:
        blocks.append(actions(ACTIONS_BLOCK_ID, [action_button("reregister_webhook", "")]))
    if failed:
        text = f"Re-registering the Strava webhook failed: {last.get('error') or 'no reason given'} ({words})"
    elif registered:
        text = f"Strava webhook checked and repaired where needed: {words}"
    else:
        text = f"Strava webhook: {words}"
    return Reply(text, fit(blocks))


# ---------------------------------------------------------------------------------------------
# rate limits

BUDGET_NAMES = {"overall": "All calls", "read": "Reads"}
WINDOW_NAMES = {"15min": "15 min", "daily": "day"}


def _bar(share: float, width: int = 10) -> str:
    filled = min(width, max(0, round(share * width)))
    return "▓" * filled + "░" * (width - filled)


def _window_text(window: dict[str, Any]) -> tuple[str, str]:
    """(mrkdwn, plain) for one budget window."""
    limit, usage = window.get("limit"), window.get("usage")
    resets = f"resets {slack_date(window.get('resets_at'), 'at an unknown time')}"
    if usage is None:
        return f"`{_bar(0)}` no calls seen yet this window (limit {limit})\n{resets}", f"–/{limit}"
    share = usage / limit if limit else 1.0
    mark = " :warning:" if share >= 0.9 else ""
    return f"`{_bar(share)}` {usage} / {limit} ({share:.0%}){mark}\n{resets}", f"{usage}/{limit}"


def rate_limits(data: dict[str, Any]) -> Reply:
    cells, plain_parts = [], []
    for budget in ("overall", "read"):
        windows = data.get(budget) or {}
        parts = []
        for window in ("15min", "daily"):
            if window not in windows:
                continue
            text, short = _window_text(windows[window])
            cells.append(f"*{BUDGET_NAMES[budget]} · {WINDOW_NAMES[window]}*\n{text}")
            parts.append(f"{WINDOW_NAMES[window]} {short}")
        if parts:
            plain_parts.append(f"{BUDGET_NAMES[budget].lower()} {', '.join(parts)}")
    queued = data.get("queued_jobs", 0)
    blocks = [header("Strava API usage"), fields(cells),
              context([f"Last Strava response {slack_date(data.get('observed_at'))}",
                       f"{queued} job{'s' if queued != 1 else ''} waiting in the queue"])]
    text = "Strava API budget — " + "; ".join(plain_parts) + f"; {queued} queued"
    return Reply(text, blocks)


# ---------------------------------------------------------------------------------------------
# help, refusal, errors

HELP_LINES = [
    (f"{COMMAND} diagnose EMAIL|ATHLETE_ID", "what is wrong with a user's Strava connection, and buttons to fix it"),
    (f"{COMMAND} link EMAIL", "send a Connect link (by DM when they are in this workspace, else to you)"),
    (f"{COMMAND} refresh EMAIL", "refresh the user's Strava token now"),
    (f"{COMMAND} webhook", "the Strava push subscription (same as `webhook status`)"),
    (f"{COMMAND} webhook register", "check and repair the push subscription"),
    (f"{COMMAND} ratelimit", "Strava API usage against the limits, and when they reset"),
    (f"{COMMAND} help", "this list"),
]


def help_message(problem: str | None = None) -> Reply:
    lines = "\n".join(f"• `{usage}` — {what}" for usage, what in HELP_LINES)
    blocks: list[Block] = []
    if problem:
        blocks.append(section(f":point_right: {escape(problem)}"))
    blocks.append(section("*FitGlue support commands*\n" + lines))
    text = (problem + " — " if problem else "") + f"FitGlue commands: {COMMAND} diagnose, link, refresh, " \
        "webhook, webhook register, ratelimit, help"
    return Reply(text, blocks)


def refusal(user_id: str, problem: str | None = None) -> Reply:
    """`problem`: why the check may have refused someone who is allowed (a user group Slack would not
    list); then the refusal says that first, since retrying later may be all it takes."""
    text = (f"Sorry, you're not on FitGlue's support list. Your Slack user ID is {user_id}; an administrator "
            f"can add it to {SUPPORT_IDS_VARIABLE}.")
    opening = ":no_entry: Sorry, you're not on FitGlue's support list, so I can't do that for you."
    if problem:
        text = (f"Sorry, I couldn't confirm that you're on FitGlue's support list: {problem}. Your Slack user ID "
                f"is {user_id}; try again later, or an administrator can add it to {SUPPORT_IDS_VARIABLE}.")
        opening = (f":no_entry: Sorry, I couldn't confirm that you're on FitGlue's support list, so I can't do "
                   f"that for you yet: {escape(problem)}. Try again later.")
    blocks = [section(f"{opening}\nYour Slack user ID is `{escape(user_id)}`. Ask an administrator to add it (or "
                      f"a user group you are in) to the `{SUPPORT_IDS_VARIABLE}` setting.")]
    return Reply(text, blocks)


def working(what: str) -> Reply:
    return Reply(f"Working on it: {what}", [context([f":hourglass_flowing_sand: Working on it: {escape(what)}"])])


def failure(message: str) -> Reply:
    return Reply(f"That didn't work: {message}", [section(f":x: That didn't work: {escape(message)}")])


# ---------------------------------------------------------------------------------------------
# alerts


def alert(kind: str, message: str) -> Reply:
    title = kind.replace("_", " ")
    return Reply(f"FitGlue alert ({title}): {message}",
                 [section(f":rotating_light: *FitGlue alert — {escape(title)}*\n{escape(message)}")])


def alert_resolved(kind: str) -> Reply:
    title = kind.replace("_", " ")
    return Reply(f"FitGlue alert resolved ({title})",
                 [section(f":large_green_circle: *Resolved — {escape(title)}*: the condition has cleared.")])


# ---------------------------------------------------------------------------------------------
# App Home


def _home_budgets(rate: dict[str, Any] | None) -> list[Block]:
    if rate is None:
        return [section(":grey_question: Strava API usage is not available.")]
    return rate_limits(rate).blocks[1:]


def _home_webhook(hook: dict[str, Any] | None) -> list[Block]:
    if hook is None:
        return [section(":grey_question: The webhook state is not available.")]
    state, _words = _subscription_state(hook)
    return [section(state), context([f"Last event from Strava {slack_date(hook.get('last_event_at'))}"])]


def home_view(summary: dict[str, Any], rate: dict[str, Any] | None, hook: dict[str, Any] | None) -> dict[str, Any]:
    """The App Home dashboard. `summary` is `SupportDesk.home_summary().to_dict()`."""
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


def _actor(actor: Any) -> str:
    text = str(actor or "unknown")
    return f"<@{escape(text[6:])}>" if text.startswith("slack:") else escape(text)


def home_refusal(user_id: str, problem: str | None = None) -> dict[str, Any]:
    return {"type": "home", "blocks": [header("FitGlue support"), *refusal(user_id, problem).blocks]}
