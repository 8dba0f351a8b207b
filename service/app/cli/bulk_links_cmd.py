"""`fitglue affected FINDING --send-links --yes [--force] --out FILE [--since ISO] [--json]`.

Runs in this process (no queue, no Slack): every affected user who still has the finding and holds
no live link (unless --force) gets a new Connect link, one audit entry each, written to FILE — a
CSV created with mode 0600 that must not exist yet, since it holds working links. A progress bar
goes to stderr when it is a terminal; stdout gets the counts.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import os
import sys
from typing import Any

from service.app.cli.output import EXIT_OK, emit, fail, run_with_desk
from service.core.audit_log import cli_actor
from service.core.runtime import Runtime
from service.desk.affected import AffectedUser
from service.desk.bulk_links import CSV_HEADER, BulkTally
from service.desk.support_desk import SupportDesk

BAR_WIDTH = 30


def progress_bar(tally: BulkTally, stream: Any = None) -> None:
    stream = stream or sys.stderr
    done, total = tally.handled, max(tally.total, 1)
    filled = BAR_WIDTH * done // total
    stream.write(f"\r[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {done}/{tally.total}  "
                 f"sent {tally.sent} skipped {tally.skipped} failed {tally.failed}")
    if done >= tally.total:
        stream.write("\n")
    stream.flush()


def open_private(path: str) -> Any:
    """A new file only its owner can read (0600); an existing one is refused (FileExistsError)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.fchmod(fd, 0o600)  # whatever the umask
    return os.fdopen(fd, "w", newline="", encoding="utf-8")


def cmd_send_links(args: argparse.Namespace) -> int:
    as_json = bool(args.json)
    if not args.yes:
        return fail("usage", "--send-links sends every affected user a Connect link: add --yes to confirm",
                    as_json)
    if not args.out:
        return fail("usage", "--send-links needs --out FILE: the new links are written there (mode 0600)",
                    as_json)
    if os.path.lexists(args.out):
        return fail("usage", f"{args.out} exists already; give a new file for the links", as_json)
    show_bar = sys.stderr.isatty() and not as_json
    # Made before the run starts: a path that cannot be written must not leave a run "under way".
    try:
        out = open_private(args.out)
    except OSError as exc:
        return fail("usage", f"cannot create {args.out} ({exc.strerror or type(exc).__name__}); give a new file "
                             "in a folder you can write to", as_json)

    async def body(desk: SupportDesk, rt: Runtime) -> int:
        run = await desk.bulk_links.start(args.finding, args.since, cli_actor(), force=args.force, queue=False)
        with out:  # written as the run goes: a stopped run keeps what it issued
            writer = csv.writer(out)
            writer.writerow(CSV_HEADER)
            written = 0

            async def to_file(user: AffectedUser, issued: dict[str, Any]) -> bool:
                return False  # the CLI sends nothing itself: every link goes to the operator's file

            async def progress(tally: BulkTally) -> None:
                nonlocal written
                writer.writerows(tally.rows[written:])
                written = len(tally.rows)
                out.flush()
                if show_bar:
                    progress_bar(tally)

            tally = await desk.bulk_links.send(run, to_file, progress)
        counts = {"run_id": run.id, "finding": run.finding, **tally.counts(), "out": args.out}
        emit(counts, as_json, f"{tally.sent} link(s) written to {args.out}, {tally.skipped} skipped (fixed "
                              f"meanwhile or holding a live link), {tally.failed} failed")
        return EXIT_OK

    try:
        code = run_with_desk(args, body)
    finally:
        out.close()
    with contextlib.suppress(OSError):  # the run never started (busy, a bad finding): no empty file left
        if os.path.getsize(args.out) == 0:
            os.unlink(args.out)
    return code
