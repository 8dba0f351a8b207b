"""Parsing the text after `/fitglue` into a sub-command. Pure: no Slack calls, no SupportDesk."""

from __future__ import annotations

import re
from dataclasses import dataclass

from service.core.inputs import BadInput, is_email, parse_who

__all__ = ["COMMAND", "Command", "Malformed", "is_email", "parse", "unwrap_email"]

COMMAND = "/fitglue"

# Slack sends e-mails typed in a slash command either as typed or, when it auto-links them,
# escaped as <mailto:a@b|a@b> (sometimes just <mailto:a@b>).
_MAILTO = re.compile(r"^<mailto:([^|>]+)(?:\|[^>]*)?>$", re.IGNORECASE)

USAGE = {
    "diagnose": f"`{COMMAND} diagnose EMAIL` or `{COMMAND} diagnose ATHLETE_ID`",
    "link": f"`{COMMAND} link EMAIL`",
    "refresh": f"`{COMMAND} refresh EMAIL`",
    "webhook": f"`{COMMAND} webhook` (or `webhook status`) and `{COMMAND} webhook register`",
    "history": f"`{COMMAND} history EMAIL` or `{COMMAND} history ATHLETE_ID`",
    "affected": f"`{COMMAND} affected FINDING_ID`, e.g. `{COMMAND} affected needs_reauth`",
}


@dataclass(frozen=True)
class Command:
    """A well-formed request. `name` is one of diagnose, history, affected, link, refresh, webhook_status,
    webhook_register, ratelimit, help; `arg` the target (e-mail or athlete id) when there is one."""

    name: str
    arg: str | None = None


@dataclass(frozen=True)
class Malformed:
    """The sub-command was recognised but its argument was missing or wrong."""

    name: str
    problem: str

    @property
    def message(self) -> str:
        return f"{self.problem} Usage: {USAGE[self.name]}."


def unwrap_email(raw: str) -> str:
    """`<mailto:a@b|a@b>` → `a@b`; anything else is returned stripped."""
    raw = raw.strip()
    match = _MAILTO.match(raw)
    return match.group(1).strip() if match else raw


def _email_arg(name: str, args: list[str]) -> Command | Malformed:
    if not args:
        return Malformed(name, "Which user? Give their e-mail address.")
    if len(args) > 1:
        return Malformed(name, "Give exactly one e-mail address.")
    email = unwrap_email(args[0])
    if not is_email(email):
        return Malformed(name, f"`{email}` doesn't look like an e-mail address.")
    return Command(name, email)


def _who_arg(name: str, args: list[str], question: str) -> Command | Malformed:
    if not args:
        return Malformed(name, f"{question} Give an e-mail address or a Strava athlete id.")
    if len(args) > 1:
        return Malformed(name, "Give exactly one e-mail address or athlete id.")
    who = unwrap_email(args[0])
    try:
        parse_who(who)  # the one WHO rule (service.core.inputs): a well-formed e-mail or an athlete id
    except BadInput as exc:
        return Malformed(name, f"{exc}.")
    return Command(name, who)


def _webhook(args: list[str]) -> Command | Malformed:
    sub = args[0].lower() if args else "status"
    if len(args) <= 1 and sub == "status":
        return Command("webhook_status")
    if len(args) == 1 and sub == "register":
        return Command("webhook_register")
    return Malformed("webhook", f"I don't know `webhook {' '.join(args)}`.")


def parse(text: str | None) -> Command | Malformed:
    """Anything unrecognised (including an empty text) is a request for help."""
    words = (text or "").split()
    if not words:
        return Command("help")
    head, args = words[0].lower(), words[1:]
    if head == "diagnose":
        return _who_arg("diagnose", args, "Whom should I diagnose?")
    if head == "affected":
        if len(args) != 1:
            return Malformed("affected", "Which finding? Give one finding id.")
        return Command("affected", args[0].strip().lower())
    if head == "history":
        return _who_arg("history", args, "Whose history?")
    if head in ("link", "refresh"):
        return _email_arg(head, args)
    if head == "webhook":
        return _webhook(args)
    if head in ("ratelimit", "ratelimits", "rate-limit") and not args:
        return Command("ratelimit")
    return Command("help")
