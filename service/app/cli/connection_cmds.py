"""`fitglue link`, `fitglue refresh`, `fitglue disconnect`."""

from __future__ import annotations

import argparse

from service.app.cli.output import EXIT_OK, emit, fail, run_with_desk
from service.core.audit_log import cli_actor
from service.core.clock import iso_utc
from service.core.runtime import Runtime
from service.desk.api_models import ConnectLinkBody, DisconnectBody, RefreshBody, RefreshDueBody
from service.desk.error_table import refresh_failure
from service.desk.support_desk import DisconnectResult, SupportDesk


def cmd_link(args: argparse.Namespace) -> int:
    async def body(desk: SupportDesk, rt: Runtime) -> int:
        issued = await desk.issue_connect_link(args.email, cli_actor())
        note = " (new FitGlue user created)" if issued.created_user else ""
        emit(ConnectLinkBody.of(issued).to_json(), args.json,
             f"Connect link for {issued.email}{note}, valid until {iso_utc(issued.expires_at)}:\n{issued.url}")
        return EXIT_OK

    return run_with_desk(args, body)


def cmd_refresh(args: argparse.Namespace) -> int:
    async def body(desk: SupportDesk, rt: Runtime) -> int:
        if args.due:
            results = await desk.refresh_due(cli_actor())
            due = RefreshDueBody.of(results)
            lines = [f"refreshed {due.refreshed}, failed {due.failed}"] + [
                f"  {r.email}: {r.status}" + (f" — {r.error}" if r.error else "") for r in results]
            emit(due.to_json(), args.json, "\n".join(lines))
            return EXIT_OK
        result = await desk.refresh_now(args.email, cli_actor())
        if result.refreshed:
            emit(RefreshBody.of(result).to_json(), args.json,
                 f"{result.email}: token refreshed, valid until {iso_utc(result.expires_at)}")
            return EXIT_OK
        failure = refresh_failure(result)
        if args.json:
            emit(RefreshBody.of(result).to_json(), True)
            return failure.exit_code
        return fail(failure.code, f"{result.email}: {result.status} — {result.error}", False)

    if not args.due and not args.email:
        return fail("usage", "give an e-mail or --due", args.json)
    if args.due and args.email:
        return fail("usage", f"give an e-mail or --due, not both (--due refreshes every token due, "
                    f"{args.email} included if it is due)", args.json)
    return run_with_desk(args, body)


def disconnect_text(result: DisconnectResult) -> str:
    """What happened, and only that: a deauthorization is claimed only when Strava confirmed it."""
    if result.deauthorized and result.warning is None:
        return f"{result.email}: FitGlue's access was deauthorized at Strava and the tokens were deleted here"
    if result.deauthorized:
        return f"{result.email}: FitGlue's access was deauthorized at Strava. warning: {result.warning}"
    return f"{result.email}: warning: {result.warning or 'Strava did not confirm a deauthorization'}"


def cmd_disconnect(args: argparse.Namespace) -> int:
    async def body(desk: SupportDesk, rt: Runtime) -> int:
        result = await desk.disconnect(args.email, cli_actor())
        emit(DisconnectBody.of(result).to_json(), args.json, disconnect_text(result))
        return EXIT_OK

    return run_with_desk(args, body)


def register(sub: argparse._SubParsersAction) -> None:
    link = sub.add_parser("link", help="issue a Connect link (an unknown e-mail becomes a new user)")
    link.add_argument("email")
    link.add_argument("--json", action="store_true")
    link.set_defaults(handler=cmd_link)

    refresh = sub.add_parser("refresh", help="refresh one user's token now, or every token due")
    refresh.add_argument("email", nargs="?")
    refresh.add_argument("--due", action="store_true", help="every token expiring within FITGLUE_REFRESH_MARGIN_S")
    refresh.add_argument("--json", action="store_true")
    refresh.set_defaults(handler=cmd_refresh)

    disconnect = sub.add_parser("disconnect", help="deauthorize at Strava and forget the tokens")
    disconnect.add_argument("email")
    disconnect.add_argument("--json", action="store_true")
    disconnect.set_defaults(handler=cmd_disconnect)
