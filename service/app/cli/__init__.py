"""`fitglue` command line. Each command group lives in its own module with a `register(subparsers)`.

Exit status: 0 done, 1 the operation failed, 2 usage or configuration error. With --json a
failure prints {"error": CODE, "message": TEXT} to stdout. Every failure is one line
(service.app.cli.output), usage errors included.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from service.app.cli import (
    affected_cmd,
    connection_cmds,
    diagnose_cmd,
    events_cmd,
    history_cmd,
    jobs_cmd,
    manifest_cmd,
    ratelimit_cmd,
    serve_cmd,
    setup_cmds,
    webhook_cmd,
    worker_cmd,
)
from service.app.cli.output import EXIT_USAGE, fail

COMMAND_MODULES = [setup_cmds, serve_cmd, worker_cmd, connection_cmds, diagnose_cmd, history_cmd, affected_cmd,
                   manifest_cmd, webhook_cmd, ratelimit_cmd, jobs_cmd, events_cmd]
EXIT_INTERRUPTED = 130  # the shell's convention for Ctrl-C
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: what a shell shows for a writer whose reader went away


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (plus where to read more), as JSON with --json."""

    wants_json = False

    def error(self, message: str) -> NoReturn:
        fail("usage", f"{self.prog}: {message} (see `{self.prog} --help`)", Parser.wants_json)
        sys.exit(EXIT_USAGE)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="fitglue", description="FitGlue Strava connection service and support tools")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for module in COMMAND_MODULES:
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _run(list(sys.argv[1:] if argv is None else argv))
    except BrokenPipeError:
        _discard_stdout()
        return EXIT_BROKEN_PIPE


def _run(args_list: list[str]) -> int:
    Parser.wants_json = "--json" in args_list
    parser = build_parser()
    try:
        args = parser.parse_args(args_list)
    except SystemExit as exc:  # --help (0) or a usage error (2, already reported in one line)
        sys.stdout.flush()
        return int(exc.code or 0)
    try:
        code = args.handler(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    sys.stdout.flush()  # here, where a closed pipe is caught, not at interpreter exit
    return int(code or 0)


def _discard_stdout() -> None:
    """The reader closed stdout (`| head -1`): point it at devnull so Python's flush at exit does
    not raise again, and end quietly (the recipe in the docs of the signal module)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout has no file descriptor (captured in a test)
        pass


def entry() -> None:
    sys.exit(main())
