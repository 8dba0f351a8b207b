"""Printing results and failures the same way for every command.

Every failure ends in one line (`error: …` on stderr, or `{"error", "message"}` on stdout with
`--json`) and the documented exit status: 2 for usage or configuration, 1 for an operation that
failed. No traceback reaches the person at the terminal: `describe_failure` is the one mapping
from what can go wrong to what is said.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import json
import socket
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError

from service.app.bootstrap import StorageError, open_runtime, sqlite_workers_settled
from service.core.inputs import BadInput
from service.core.runtime import Runtime
from service.core.settings import ConfigError, Settings, load_settings
from service.desk.support_desk import SupportDesk, SupportError
from service.strava import StravaError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def emit(data: Any, as_json: bool, text: str | None = None) -> None:
    if as_json:
        print(json.dumps(data, indent=2, sort_keys=False))
    elif text is not None:
        print(text)


def fail(code: str, message: str, as_json: bool, exit_code: int) -> int:
    if as_json:
        print(json.dumps({"error": code, "message": message}))
    else:
        print(f"error: {message}", file=sys.stderr)
    return exit_code


def argument(parse: Callable[[str, str], Any], name: str) -> Callable[[str], Any]:
    """An argparse `type=` from a service.core.inputs parser: the same rule as the admin API and the bot."""

    def convert(raw: str) -> Any:
        try:
            return parse(raw, name)
        except BadInput as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return convert


def refuse_options(args: argparse.Namespace, why: str, **given: bool) -> int | None:
    """A usage error (exit 2) naming the options this command would ignore, or None when none is given."""
    ignored = [name for name, present in given.items() if present]
    if not ignored:
        return None
    names = ", ".join(ignored)
    return fail("usage", f"{names} cannot be used here: {why}", bool(getattr(args, "json", False)), EXIT_USAGE)


def database_location(url: str) -> str:
    """Where the database lives, for a message: the SQLite file, or the URL without its password."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return "(unparseable URL)"
    if parsed.get_backend_name() == "sqlite":
        return parsed.database or ":memory:"
    return parsed.render_as_string(hide_password=True)


def _reason(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip().splitlines()[0] if str(orig).strip() else ""
    return f"{type(orig).__name__}: {text}" if text else type(orig).__name__


_UNREACHABLE_ERRNOS = frozenset({errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ETIMEDOUT})


def _is_unreachable(exc: BaseException) -> bool:
    """A connection to a server that failed (refused, no route, unknown host, timed out). asyncpg
    raises these bare, not wrapped in a DBAPIError; with several addresses an OSError of them all."""
    if isinstance(exc, ConnectionError | socket.gaierror | TimeoutError):
        return True
    return isinstance(exc, OSError) and (exc.errno in _UNREACHABLE_ERRNOS
                                         or str(exc).startswith("Multiple exceptions"))


def describe_failure(exc: BaseException, database_url: str) -> tuple[str, str, int]:
    """(error code, one-line message, exit status) for anything a command can end in."""
    if isinstance(exc, ConfigError):
        return "configuration", str(exc), EXIT_USAGE
    if isinstance(exc, SupportError):
        return exc.code, str(exc), exc.exit_code
    if isinstance(exc, BadInput):
        return exc.code, str(exc), EXIT_USAGE
    if isinstance(exc, ArgumentError | NoSuchModuleError):
        return "configuration", f"FITGLUE_DATABASE_URL is not a usable database URL ({_reason(exc)})", EXIT_USAGE
    if isinstance(exc, StorageError):
        return "storage", (f"cannot write to the database storage at {exc.path} ({exc.reason}); fix that "
                           "or point FITGLUE_DATABASE_URL elsewhere"), EXIT_FAILED
    if isinstance(exc, DBAPIError | SQLAlchemyError):
        return "database", (f"the database at {database_location(database_url)} could not be used ({_reason(exc)}); "
                            "check FITGLUE_DATABASE_URL, that the storage is writable, and run `fitglue db upgrade`"
                            ), EXIT_FAILED
    if database_url and _is_unreachable(exc):
        return "database", (f"the database at {database_location(database_url)} could not be reached ({_reason(exc)}); "
                            "check FITGLUE_DATABASE_URL and that the database server is running"), EXIT_FAILED
    if isinstance(exc, StravaError):
        return "strava_unavailable", f"Strava did not answer as expected ({exc.summary})", EXIT_FAILED
    if isinstance(exc, OSError):
        return "os_error", f"{_reason(exc)}", EXIT_FAILED
    return "internal", f"the command failed unexpectedly ({_reason(exc)})", EXIT_FAILED


def report_failure(exc: BaseException, database_url: str, as_json: bool) -> int:
    if isinstance(exc, BrokenPipeError):
        raise exc  # stdout was closed by the reader: nothing to report, and nowhere (service.app.cli.main)
    code, message, status = describe_failure(exc, database_url)
    return fail(code, message, as_json, status)


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
