"""`fitglue` command line. Each command group lives in its own module with a `register(subparsers)`.

Exit status: 0 done, 1 the operation failed, 2 usage or configuration error. With --json a
failure prints {"error": CODE, "message": TEXT} to stdout. Every failure is one line
(service.app.cli.output), usage errors included.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from service.app.cli import (
    connection_cmds,
    diagnose_cmd,
    jobs_cmd,
    manifest_cmd,
    ratelimit_cmd,
    serve_cmd,
    setup_cmds,
    webhook_cmd,
)
from service.app.cli.output import EXIT_USAGE, fail

COMMAND_MODULES = [setup_cmds, serve_cmd, connection_cmds, diagnose_cmd, manifest_cmd, webhook_cmd, ratelimit_cmd, jobs_cmd]
EXIT_INTERRUPTED = 130  # the shell's convention for Ctrl-C


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (plus where to read more), as JSON with --json."""

    wants_json = False

    def error(self, message: str) -> NoReturn:
        fail("usage", f"{self.prog}: {message} (see `{self.prog} --help`)", Parser.wants_json, EXIT_USAGE)
        sys.exit(EXIT_USAGE)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="fitglue", description="FitGlue Strava connection service and support tools")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for module in COMMAND_MODULES:
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    Parser.wants_json = "--json" in args_list
    parser = build_parser()
    try:
        args = parser.parse_args(args_list)
    except SystemExit as exc:  # --help (0) or a usage error (2, already reported in one line)
        return int(exc.code or 0)
    try:
        code = args.handler(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return int(code or 0)


def entry() -> None:
    sys.exit(main())
