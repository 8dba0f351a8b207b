"""Short replies that are not an operation's result: help, the refusal for someone not on the
support list, "working on it", a failure, and the proactive alerts."""

from __future__ import annotations

from bot.blocks import Block, Reply, context, escape, section
from bot.commands import COMMAND

SUPPORT_IDS_VARIABLE = "FITGLUE_SUPPORT_SLACK_IDS"


HELP_LINES = [
    (f"{COMMAND} diagnose EMAIL|ATHLETE_ID", "what is wrong with a user's Strava connection, and buttons to fix it"),
    (f"{COMMAND} history EMAIL|ATHLETE_ID", "what happened to a user's connection, newest first"),
    (f"{COMMAND} affected FINDING_ID", "everyone with a finding (e.g. needs_reauth), and Connect links for all of them"),
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
    text = (problem + " — " if problem else "") + f"FitGlue commands: {COMMAND} diagnose, history, affected, link, refresh, " \
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


def alert(kind: str, message: str) -> Reply:
    title = kind.replace("_", " ")
    return Reply(f"FitGlue alert ({title}): {message}",
                 [section(f":rotating_light: *FitGlue alert — {escape(title)}*\n{escape(message)}")])


def alert_resolved(kind: str) -> Reply:
    title = kind.replace("_", " ")
    return Reply(f"FitGlue alert resolved ({title})",
                 [section(f":large_green_circle: *Resolved — {escape(title)}*: the condition has cleared.")])
