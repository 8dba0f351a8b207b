"""Replies to the operations an agent runs: a token refresh, the push subscription (status and
re-registration) and the Strava API budgets."""

from __future__ import annotations

from typing import Any

from bot.blocks import Block, Reply, actions, context, escape, fields, fit, header, section, slack_date
from bot.render.diagnosis_blocks import ACTIONS_BLOCK_ID, action_button
from troubleshooting import STATUS_TEXT


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


def events_retried(target: str, result: dict[str, Any]) -> Reply:
    """What pressing "Retry events" did: `result` is `{"retried": N}`."""
    count = int(result.get("retried") or 0)
    if not count:
        return Reply(f"No undelivered events for {target} to send again",
                     [section(f":information_source: Nothing to send again for *{escape(target)}*: none of their "
                              "events is parked or waiting after a failed attempt.")])
    return Reply(f"{count} event(s) for {target} will be sent to FitGlue's other services again now",
                 [section(f":outbox_tray: {count} event(s) for *{escape(target)}* will be sent to FitGlue's other "
                          "services again now, in order and with their original ids.")])


def subscription_state(data: dict[str, Any]) -> tuple[str, str]:
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
    state, words = subscription_state(data)
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
