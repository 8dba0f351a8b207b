"""`fitglue diagnose WHO [--json]` and `fitglue forget EMAIL [--json]`."""

from __future__ import annotations

import argparse
import textwrap
from typing import Any

from service.app.cli.output import EXIT_OK, emit, run_with_desk
from service.core.audit_log import cli_actor
from service.core.runtime import Runtime
from service.desk.api_models import DiagnosisBody, ForgetBody
from service.desk.support_desk import SupportDesk
from troubleshooting import Diagnosis, Finding, summary_line
from troubleshooting.vocabulary import Severity

WIDTH = 100
SEVERITY_HEADINGS = ((Severity.ERROR, "Errors"), (Severity.WARNING, "Warnings"), (Severity.INFO, "Notes"),
                     (Severity.OK, "All clear"))
WHO_ACTS = {
    "user": "the user must act",
    "support": "support can fix it",
    "operator": "an operator must fix our Strava app",
    "none": "nobody needs to act",
}
FACT_LABELS = {
    "now": "checked at",
    "who": "asked about",
    "email": "e-mail",
    "athlete_id": "Strava athlete id",
    "status": "status",
    "granted_scopes": "granted permissions",
    "token_expires_at": "access token expires",
    "connected_at": "connected at",
    "last_refresh_at": "last token refresh",
    "last_refresh_error_kind": "last refresh error (kind)",
    "last_refresh_error": "last refresh error",
    "last_refresh_error_at": "last refresh error at",
    "consecutive_refresh_failures": "refresh failures in a row",
    "status_reason": "status reason",
    "status_changed_at": "status changed at",
    "last_attempt": "latest connect attempt",
    "app_athlete_capacity": "Strava app athlete capacity",
    "connected_athletes": "athletes connected (app-wide)",
    "subscription": "push subscription",
    "last_event_at": "last confirmed event from this athlete",
    "app_last_event_at": "last confirmed event from anyone",
    "budgets": "Strava API budgets",
    "user_jobs_queued": "this user's queued jobs",
    "user_jobs_waiting_for_window": "of which wait for the rate-limit window",
    "next_window_at": "next window",
    "user_jobs_failed": "this user's failed jobs",
    "last_job_failure": "why the newest one failed",
    "strava_configured": "Strava configured",
    "thresholds": "thresholds",
}


def _wrap(text: str, indent: str) -> list[str]:
    return textwrap.wrap(text, WIDTH, initial_indent=indent, subsequent_indent=indent) or [indent.rstrip()]


def render_finding(finding: Finding) -> list[str]:
    lines = [f"  [{finding.severity.upper()}] {finding.title} — {WHO_ACTS.get(finding.audience, finding.audience)}"]
    lines += _wrap(finding.detail, "      ")
    if finding.remedy:
        lines.append("      What to do:")
        for number, step in enumerate(finding.remedy, 1):
            first = f"        {number}. "
            wrapped = textwrap.wrap(step, WIDTH, initial_indent=first, subsequent_indent=" " * len(first))
            lines += wrapped
    extras = []
    if finding.actions:
        extras.append("actions: " + ", ".join(finding.actions))
    extras.append(f"help article: {finding.article} ({finding.id})")
    lines.append("      " + " · ".join(extras))
    return lines


def _value(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list) and all(not isinstance(v, dict | list) for v in value):
        return ", ".join(str(v) for v in value) or "none"
    return str(value)


def _budget_line(budget: dict[str, Any]) -> str:
    usage = budget.get("usage")
    used = f"no usage seen this window (limit {budget['limit']})" if usage is None else \
        f"{usage} of {budget['limit']} used"
    return f"{budget['budget']} {budget['window']}: {used}, resets {budget['resets_at']}"


def render_facts(facts: dict[str, Any]) -> list[str]:
    """Every recorded fact; unrecorded ones (null) are left out here, the JSON keeps them."""
    shown = {k: v for k, v in facts.items() if v is not None and k != "thresholds"}
    width = max((len(FACT_LABELS.get(k, k)) for k in shown), default=10)
    lines = ["Facts"]
    for key, value in shown.items():
        label = FACT_LABELS.get(key, key.replace("_", " "))
        if key == "budgets" and isinstance(value, list):
            lines.append(f"  {label}")
            lines += [f"    {_budget_line(b)}" for b in value]
        elif isinstance(value, dict):
            lines.append(f"  {label}")
            lines += [f"    {k.replace('_', ' ')}: {_value(v)}" for k, v in value.items() if v is not None]
        else:
            lines.append(f"  {label:<{width}}  {_value(value)}")
    thresholds = facts.get("thresholds") or {}
    if thresholds:
        lines.append("  thresholds: " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in thresholds.items()))
    return lines


def render_diagnosis(diagnosis: Diagnosis) -> str:
    lines = [summary_line(diagnosis), ""]
    for severity, heading in SEVERITY_HEADINGS:
        group = [f for f in diagnosis.findings if f.severity == severity]
        if not group:
            continue
        lines.append(heading)
        for finding in group:
            lines += render_finding(finding)
            lines.append("")
    lines += render_facts(diagnosis.facts)
    return "\n".join(lines)


def cmd_diagnose(args: argparse.Namespace) -> int:
    async def body(desk: SupportDesk, rt: Runtime) -> int:
        diagnosis = await desk.diagnose(args.who)  # a database failure: one line (service.app.cli.output)
        emit(DiagnosisBody.of(diagnosis).to_json(), args.json, render_diagnosis(diagnosis))
        return EXIT_OK  # a broken connection, diagnosed, is still a job done

    return run_with_desk(args, body)


def cmd_forget(args: argparse.Namespace) -> int:
    async def body(desk: SupportDesk, rt: Runtime) -> int:
        result = await desk.forget(args.email, cli_actor())
        if result.forgotten is None:  # no such user: nothing erased, nothing to name
            emit(ForgetBody.of(result).to_json(), args.json, f"{args.email.strip()}: warning: {result.warning}")
            return EXIT_OK
        counts = ", ".join(f"{table.replace('_', ' ')}: {n}" for table, n in result.deleted.items() if n)
        text = (f"{args.email.strip()}: erased ({counts or 'nothing else stored'}); "
                f"the audit log now calls them {result.forgotten}")
        if result.deauthorized:
            text += "\nStrava access was deauthorized."
        if result.warning:
            text += f"\nwarning: {result.warning}; the tokens were deleted here anyway"
        emit(ForgetBody.of(result).to_json(), args.json, text)
        return EXIT_OK

    return run_with_desk(args, body)


def register(sub: argparse._SubParsersAction) -> None:
    diagnose = sub.add_parser("diagnose", help="diagnose one user's Strava connection (e-mail or athlete id)")
    diagnose.add_argument("who", help="the user's e-mail address or Strava athlete id")
    diagnose.add_argument("--json", action="store_true", help="print the diagnosis as JSON")
    diagnose.set_defaults(handler=cmd_diagnose)

    forget = sub.add_parser("forget", help="erase a user: disconnect, delete their data, keep an anonymised audit entry")
    forget.add_argument("email")
    forget.add_argument("--json", action="store_true")
    forget.set_defaults(handler=cmd_forget)
