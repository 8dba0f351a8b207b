"""`fitglue history WHO [--limit N] [--before CURSOR] [--json]`: one user's timeline, newest first."""

from __future__ import annotations

import argparse

from service.app.cli.output import EXIT_OK, argument, emit, run_with_desk
from service.core.inputs import MAX_LIMIT, parse_limit
from service.core.runtime import Runtime
from service.desk.history import DEFAULT_LIMIT, HistoryPage
from service.desk.support_desk import SupportDesk
from service.desk.support_view_models import HistoryBody


def _limit(raw: str, name: str) -> int:
    return parse_limit(raw, name, default=DEFAULT_LIMIT)


def render_history(who: str, page: HistoryPage) -> str:
    if not page.entries:
        return f"{page.email}: nothing in the history" + (" before that cursor" if page.next_before else "")
    width = max(len(e.kind) for e in page.entries)
    lines = [f"{page.email}: newest first"]
    for entry in page.entries:
        data = entry.to_dict()
        lines.append(f"{data['at']}  {entry.kind:<{width}}  {entry.summary}  [{entry.article}]")
    if page.next_before:
        lines.append(f"older: fitglue history {who} --before {page.next_before}")
    return "\n".join(lines)


def cmd_history(args: argparse.Namespace) -> int:
    async def body(desk: SupportDesk, rt: Runtime) -> int:
        page = await desk.history.page(args.who, args.limit or DEFAULT_LIMIT, args.before)
        emit(HistoryBody.of(page).to_json(), args.json, render_history(args.who, page))
        return EXIT_OK

    return run_with_desk(args, body)


def register(sub: argparse._SubParsersAction) -> None:
    history = sub.add_parser("history", help="one user's connection history, newest first (e-mail or athlete id)")
    history.add_argument("who", help="the user's e-mail address or Strava athlete id")
    history.add_argument("--limit", type=argument(_limit, "--limit"),
                         help=f"at most this many entries (1-{MAX_LIMIT}, default {DEFAULT_LIMIT})")
    history.add_argument("--before", help="the cursor a previous page printed (`next_before`), for older entries")
    history.add_argument("--json", action="store_true")
    history.set_defaults(handler=cmd_history)
