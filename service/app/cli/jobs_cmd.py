"""`fitglue jobs [--state S] [--limit N] [--json]` and `fitglue jobs retry ID|--failed [--json]`."""

from __future__ import annotations

import argparse

from service.app.cli.output import (
    EXIT_OK,
    add_retry_command,
    argument,
    emit,
    retry_refused,
    run_with_desk,
)
from service.core.audit_log import cli_actor
from service.core.clock import iso_utc
from service.core.inputs import MAX_LIMIT, parse_limit
from service.core.runtime import Runtime
from service.desk.api_models import JobBody, JobsBody, RetriedBody
from service.desk.support_desk import SupportDesk
from troubleshooting.vocabulary import JOB_STATES

DEFAULT_LIMIT = 100


def _limit(raw: str, name: str) -> int:
    return parse_limit(raw, name, default=DEFAULT_LIMIT)


def cmd_jobs(args: argparse.Namespace) -> int:
    async def body(desk: SupportDesk, rt: Runtime) -> int:
        jobs = await desk.webhooks.list_jobs(args.state, args.limit or DEFAULT_LIMIT)
        lines = [f"{'id':>6}  {'state':<7} {'kind':<14} {'tries':>5}  {'run after':<20} waiting / last error"]
        for job in jobs:
            why = " — ".join(x for x in (job.waiting_for, job.last_error) if x)
            lines.append(f"{job.id:>6}  {job.state:<7} {job.kind:<14} {job.attempts:>5}  {iso_utc(job.run_after):<20} {why}")
        if not jobs:
            lines = ["no jobs" + (f" in state {args.state}" if args.state else "")]
        emit(JobsBody.of(jobs).to_json(), args.json, "\n".join(lines))
        return EXIT_OK

    return run_with_desk(args, body)


def cmd_retry(args: argparse.Namespace) -> int:
    as_json = bool(getattr(args, "json", False))
    refused = retry_refused(args, "job", **{"--state": args.state is not None, "--limit": args.limit is not None})
    if refused is not None:
        return refused

    async def body(desk: SupportDesk, rt: Runtime) -> int:
        if args.failed:
            result = await desk.webhooks.retry_failed_jobs(cli_actor())
            emit(RetriedBody.of(result).to_json(), as_json, f"{len(result.job_ids)} failed job(s) queued again")
            return EXIT_OK
        job = await desk.webhooks.retry_job(args.id, cli_actor())
        emit(JobBody.of(job).to_json(), as_json, f"job {job.id} ({job.kind}) queued again, due now")
        return EXIT_OK

    return run_with_desk(args, body)


def register(sub: argparse._SubParsersAction) -> None:
    jobs = sub.add_parser("jobs", help="the retry queue: list jobs, retry parked ones")
    jobs.add_argument("--state", choices=JOB_STATES, help="only jobs in this state")
    jobs.add_argument("--limit", type=argument(_limit, "--limit"),
                      help=f"at most this many, newest first (1-{MAX_LIMIT}, default {DEFAULT_LIMIT})")
    jobs.add_argument("--json", action="store_true")
    jobs.set_defaults(handler=cmd_jobs)
    actions = jobs.add_subparsers(dest="jobs_command", metavar="retry")
    add_retry_command(actions, "queue a failed job (or every failed job) to run again now", "every failed job",
                      cmd_retry)
