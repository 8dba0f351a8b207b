"""`fitglue jobs [--state S] [--json]` and `fitglue jobs retry ID|--failed [--json]`."""

from __future__ import annotations

import argparse

from ..audit import cli_actor
from ..queue import STATES
from ..runtime import Runtime
from ..support import SupportDesk
from .output import EXIT_OK, EXIT_USAGE, emit, fail, run_with_desk


def cmd_jobs(args: argparse.Namespace) -> int:
    async def body(desk: SupportDesk, rt: Runtime) -> int:
        jobs = await desk.list_jobs(args.state, args.limit)
        lines = [f"{'id':>6}  {'state':<7} {'kind':<14} {'tries':>5}  {'run after':<20} waiting / last error"]
        for job in jobs:
            data = job.to_dict()
            why = " — ".join(x for x in (job.waiting_for, job.last_error) if x)
            lines.append(f"{job.id:>6}  {job.state:<7} {job.kind:<14} {job.attempts:>5}  {data['run_after']:<20} {why}")
        if not jobs:
            lines = ["no jobs" + (f" in state {args.state}" if args.state else "")]
        emit({"jobs": [j.to_dict() for j in jobs]}, args.json, "\n".join(lines))
        return EXIT_OK

    return run_with_desk(args, body)


def cmd_retry(args: argparse.Namespace) -> int:
    if (args.id is None) == (not args.failed):
        return fail("usage", "give a job id or --failed (not both)", args.json, EXIT_USAGE)

    async def body(desk: SupportDesk, rt: Runtime) -> int:
        if args.failed:
            result = await desk.retry_failed_jobs(cli_actor())
            emit(result.to_dict(), args.json, f"{len(result.job_ids)} failed job(s) queued again")
            return EXIT_OK
        job = await desk.retry_job(args.id, cli_actor())
        emit(job.to_dict(), args.json, f"job {job.id} ({job.kind}) queued again, due now")
        return EXIT_OK

    return run_with_desk(args, body)


def register(sub: argparse._SubParsersAction) -> None:
    jobs = sub.add_parser("jobs", help="the retry queue: list jobs, retry parked ones")
    jobs.add_argument("--state", choices=STATES, help="only jobs in this state")
    jobs.add_argument("--limit", type=int, default=100, help="at most this many, newest first (default 100)")
    jobs.add_argument("--json", action="store_true")
    jobs.set_defaults(handler=cmd_jobs)
    actions = jobs.add_subparsers(dest="jobs_command", metavar="retry")
    retry = actions.add_parser("retry", help="queue a failed job (or every failed job) to run again now")
    retry.add_argument("id", nargs="?", type=int)
    retry.add_argument("--failed", action="store_true", help="every failed job")
    retry.add_argument("--json", action="store_true")
    retry.set_defaults(handler=cmd_retry)
