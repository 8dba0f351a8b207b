"""`fitglue` command line. Each command group lives in its own module with a `register(subparsers)`.

Exit status: 0 done, 1 the operation failed, 2 usage or configuration error. With --json a
failure prints {"error": CODE, "message": TEXT} to stdout.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import basics, connections, diagnose, jobs, manifest, ratelimit, serve, webhook

COMMAND_MODULES = [basics, serve, connections, diagnose, manifest, webhook, ratelimit, jobs]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fitglue", description="FitGlue Strava connection service and support tools")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for module in COMMAND_MODULES:
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    code = args.handler(args)
    return int(code or 0)


def entry() -> None:
    sys.exit(main())
