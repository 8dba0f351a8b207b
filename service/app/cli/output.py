"""Printing results and failures the same way for every command.

Every failure ends in one line (`error: …` on stderr, or `{"error", "message"}` on stdout with
`--json`) and the documented exit status: 2 for usage or configuration, 1 for an operation that
failed. No traceback reaches the person at the terminal: `describe_failure` is the one mapping
from what can go wrong to what is said.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from service.app.bootstrap import StorageError, open_runtime, sqlite_workers_settled
from service.core.inputs import BadInput, parse_row_id
from service.core.runtime import Runtime
from service.core.settings import ConfigError, Settings, load_settings
from service.desk.boundary import as_support_error, reason
from service.desk.error_table import ERRORS, EXIT_FAILED, EXIT_OK, EXIT_USAGE, SupportError
from service.desk.support_desk import SupportDesk

__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_USAGE", "emit", "fail", "run_with_desk"]


def emit(data: Any, as_json: bool, text: str | None = None) -> None:
    if as_json:
        print(json.dumps(data, indent=2, sort_keys=False))
    elif text is not None:
        print(text)


def fail(code: str, message: str, as_json: bool) -> int:
    """Print a failure; its exit status is the error table's (service/desk/error_table.py) for `code`."""
    if as_json:
        print(json.dumps({"error": code, "message": message}))
    else:
        print(f"error: {message}", file=sys.stderr)
    return ERRORS[code].exit_code


def argument(parse: Callable[[str, str], Any], name: str) -> Callable[[str], Any]:
    """An argparse `type=` from a service.core.inputs parser: the same rule as the admin API and the bot."""

    def convert(raw: str) -> Any:
        try:
            return parse(raw, name)
        except BadInput as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return convert


def add_retry_command(actions: Any, help_text: str, failed_help: str,
                      handler: Callable[[argparse.Namespace], int]) -> argparse.ArgumentParser:
    """`… retry ID|--failed [--json]` under `actions` (the subparsers of `jobs` or `events`)."""
    retry = actions.add_parser("retry", help=help_text)
    retry.add_argument("id", nargs="?", type=argument(parse_row_id, "ID"))
    retry.add_argument("--failed", action="store_true", help=failed_help)
    # SUPPRESS: `fitglue jobs --json retry 3` keeps the --json given before `retry`.
    retry.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
    retry.set_defaults(handler=handler)
    return retry


def retry_refused(args: argparse.Namespace, what: str, **listing_options: bool) -> int | None:
    """The usage error of a `… retry ID|--failed` (options of the listing given, or not exactly one of
    an id and --failed), or None when it may run. `what` names the rows: "job", "event"."""
    refused = refuse_options(args, f"they choose which {what}s to list, and retry lists nothing", **listing_options)
    if refused is None and (args.id is None) == (not args.failed):
        return fail("usage", f"give {'an' if what[0] in 'aeiou' else 'a'} {what} id or --failed (not both)",
                    bool(getattr(args, "json", False)))
    return refused


def refuse_options(args: argparse.Namespace, why: str, **given: bool) -> int | None:
    """A usage error (exit 2) naming the options this command would ignore, or None when none is given."""
    ignored = [name for name, present in given.items() if present]
    if not ignored:
        return None
    names = ", ".join(ignored)
    return fail("usage", f"{names} cannot be used here: {why}", bool(getattr(args, "json", False)))


def describe_failure(exc: BaseException, database_url: str) -> tuple[str, str, int]:
    """(error code, one-line message, exit status) for anything a command can end in: the desk's
    translation (service/desk/boundary.py) and exit status (service/desk/error_table.py) for what it knows,
    plus what only the CLI meets (the storage it opens, the operating system)."""
    if isinstance(exc, StorageError):
        failure = SupportError("storage", f"cannot write to the database storage at {exc.path} ({exc.reason}); fix "
                               "that or point FITGLUE_DATABASE_URL elsewhere")
    else:
        failure = as_support_error(exc, database_url) or (
            SupportError("os_error", reason(exc)) if isinstance(exc, OSError)
            else SupportError("internal", f"the command failed unexpectedly ({reason(exc)})"))
    return failure.code, str(failure), failure.exit_code


def report_failure(exc: BaseException, database_url: str, as_json: bool) -> int:
    if isinstance(exc, BrokenPipeError):
        raise exc  # stdout was closed by the reader: nothing to report, and nowhere (service.app.cli.main)
    code, message, _status = describe_failure(exc, database_url)
    return fail(code, message, as_json)


def run_with_desk(args: Any, body: Callable[[SupportDesk, Runtime], Awaitable[int]],
                  settings: Settings | None = None) -> int:
    """Open the runtime (database + Strava client), run `body`, map failures to exit codes."""
    as_json = bool(getattr(args, "json", False))
    try:
        settings = settings or load_settings()
    except ConfigError as exc:
        return report_failure(exc, "", as_json)

    async def go() -> int:
        async with sqlite_workers_settled():
            rt = await open_runtime(settings)
            try:
                return await body(SupportDesk(rt), rt)
            finally:
                await rt.close()

    try:
        return asyncio.run(go())
    except Exception as exc:  # noqa: BLE001 - every failure ends in one line, never a traceback
        return report_failure(exc, settings.database_url, as_json)
