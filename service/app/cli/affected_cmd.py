"""`fitglue affected FINDING_ID [--since ISO] [--json]`: who has a finding now, counted by day.

With `--send-links --yes [--force] --out FILE` it also sends each of them a Connect link
(service/app/cli/bulk_links_cmd.py)."""

from __future__ import annotations

import argparse

from service.app.cli.output import EXIT_OK, emit, refuse_options, run_with_desk
from service.core.runtime import Runtime
from service.desk.affected import AFFECTED_FINDINGS, AffectedReport
from service.desk.support_desk import SupportDesk
from service.desk.support_view_models import AffectedBody


def render_affected(report: AffectedReport) -> str:
    data = report.to_dict()
    scope = f" since {data['since']}" if data["since"] else ""
    if not report.count:
        return f"nobody has {report.finding}{scope}"
    lines = [f"{report.count} user(s) with {report.finding}{scope}" +
             (f"; the {len(report.users)} most recent:" if report.count > len(report.users) else ":")]
    width = max(len(u.email) for u in report.users)
    for user in data["users"]:
        lines.append(f"  {user['email']:<{width}}  athlete {user['athlete_id'] or '-':<10}  since {user['since']}"
                     f"  last change {user['last_change']}")
    lines.append("by day: " + ", ".join(f"{d['date']} {d['count']}" for d in data["by_day"]))
    return "\n".join(lines)


def cmd_affected(args: argparse.Namespace) -> int:
    refused = refuse_options(args, "they only apply with --send-links", **{
        "--yes": args.yes and not args.send_links, "--force": args.force and not args.send_links,
        "--out": args.out is not None and not args.send_links})
    if refused is not None:
        return refused
    if args.send_links:
        from service.app.cli.bulk_links_cmd import cmd_send_links

        return cmd_send_links(args)

    async def body(desk: SupportDesk, rt: Runtime) -> int:
        report = await desk.affected.report(args.finding, args.since)
        emit(AffectedBody.of(report).to_json(), args.json, render_affected(report))
        return EXIT_OK

    return run_with_desk(args, body)


def register(sub: argparse._SubParsersAction) -> None:
    affected = sub.add_parser("affected", help="who has a finding now (" + ", ".join(AFFECTED_FINDINGS) + ")")
    affected.add_argument("finding", metavar="FINDING_ID", help="one of " + ", ".join(AFFECTED_FINDINGS))
    affected.add_argument("--since", help="only users who got the finding at or after this ISO 8601 date or time")
    affected.add_argument("--json", action="store_true")
    affected.add_argument("--send-links", action="store_true",
                          help="issue each of them a new Connect link, written to --out (from Slack, the bot sends "
                               "them by DM instead)")
    affected.add_argument("--yes", action="store_true", help="confirm --send-links")
    affected.add_argument("--force", action="store_true",
                          help="also users who already hold a link that has not expired")
    affected.add_argument("--out", help="CSV file (created with mode 0600) for the links not sent by DM")
    affected.set_defaults(handler=cmd_affected)
