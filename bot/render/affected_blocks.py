"""Who has a finding, as a Slack reply: the count, the 20 most recently affected users, a count per
day, and — for findings a new Connect link cures — a "Send Connect links to all N" button behind
Slack's confirm dialog, which states the count. Also the bulk run's progress and final report."""

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
    escape,
    fit,
    header,
    section,
    slack_date,
)
from bot.interactive import SEND_LINKS_BULK  # the button's value: "FINDING" or "FINDING SINCE"

AFFECTED_BLOCK_ID = "fitglue_affected"
# Findings whose remedy is a new Connect link (troubleshooting's knowledge offers send_connect_link).
LINK_FINDINGS = ("needs_reauth", "revoked", "missing_permissions", "authorization_failed")


def bulk_value(finding: str, since: str | None) -> str:
    return f"{finding} {since}" if since else finding


def split_bulk_value(value: str) -> tuple[str, str | None]:
    finding, _, since = value.strip().partition(" ")
    return finding, since.strip() or None


def _bulk_button(finding: str, count: int, since: str | None) -> dict[str, Any]:
    dialog = confirm_dialog(
        f"Send Connect links to {count} users?",
        f"Each of the {count} users with {finding} gets their own Connect link: by direct message when they are "
        "in this workspace; the others' links come to you alone as a CSV file. Users who already hold a "
        "link that has not expired are skipped.",
        f"Send {count} links", style="primary")
    return button(f"Send Connect links to all {count}", SEND_LINKS_BULK, bulk_value(finding, since),
                  style="primary", confirm=dialog)


def affected(report: dict[str, Any]) -> Reply:
    """`report` is the desk's `{"finding", "count", "since", "users", "by_day"}`."""
    finding, count, since = str(report.get("finding", "")), int(report.get("count") or 0), report.get("since")
    scope = f" since {slack_date(since)}" if isinstance(since, str) and since else ""
    blocks: list[Block] = [header(f"Users with {finding}: {count}")]
    users = list(report.get("users") or [])
    if not users:
        blocks.append(section(f"Nobody has `{escape(finding)}`{scope}."))
    else:
        shown = f"the {len(users)} most recent" if count > len(users) else "all of them"
        lines = [f"• *{escape(str(u.get('email')))}* — since {slack_date(u.get('since'))}, last change "
                 f"{slack_date(u.get('last_change'))}" for u in users]
        blocks.append(section(f"{count} user(s) with `{escape(finding)}`{scope}; {shown}:\n" + "\n".join(lines)))
    days = [f"{escape(str(d.get('date')))}: {d.get('count')}" for d in report.get("by_day") or []]
    if days:
        blocks.append(context(["By day (UTC) — " + " · ".join(days[-60:])]))
    if count and finding in LINK_FINDINGS:
        blocks.append(actions(AFFECTED_BLOCK_ID, [_bulk_button(finding, count, since if isinstance(since, str)
                                                                else None)]))
    text = f"{count} user(s) with {finding}" + (f" since {since}" if since else "")
    return Reply(text, fit(blocks, MAX_MESSAGE_BLOCKS))


def bulk_progress(finding: str, done: int, total: int, tally: dict[str, int], final: bool = False,
                  file_shared: bool = True) -> Reply:
    """The bulk run's progress (through the response URL) or, with `final`, its report by DM;
    `file_shared`: whether the CSV for users outside the workspace reached the agent (when it did
    not, its links count as not delivered, not as sent)."""
    undelivered = tally.get("to_file", 0) if final and not file_shared else 0
    counts = (f"{tally.get('sent', 0) - undelivered} sent, "
              + (f"{undelivered} not delivered, " if undelivered else "")
              + f"{tally.get('skipped', 0)} skipped, {tally.get('failed', 0)} failed")
    if final:
        text = f"Connect links for {finding}: done. {counts} (of {total})."
        extra = " Links for users outside this workspace are in the CSV file I sent you." \
            if tally.get("to_file") and file_shared else ""
        return Reply(text, [section(f":white_check_mark: *Connect links for `{escape(finding)}`: done.*\n{counts} "
                                    f"(of {total}); skipped means already fixed meanwhile, or holding a live link."
                                    f"{extra}")])
    text = f"Sending Connect links for {finding}: {done} of {total} handled ({counts})"
    return Reply(text, [section(f":hourglass_flowing_sand: Sending Connect links for `{escape(finding)}`: "
                                f"*{done} of {total}* handled — {counts}. The final report comes by direct message.")])
