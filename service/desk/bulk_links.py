"""Sending a Connect link to everyone with a finding, after an incident (issue 13).

A run is a row of `bulk_link_runs`. From Slack it is queued work (job kind `bulk_links`, run by the
queue worker through the bot's courier); from the CLI it runs in the CLI's own process. Either way
`BulkLinksOps.send` walks every affected user once and, just before each link, checks again:

- a user who no longer has the finding (fixed meanwhile) is skipped;
- a user who holds a Connect link that has not expired is skipped, unless the run has `force`;
- otherwise a link is issued (one audit entry each, by the asking agent) and handed to `deliver`,
  which sends it by DM (True) or leaves it for the CSV file only the asking agent receives (False).

Only one run per finding is active at a time: `active_key` holds the finding while the run is
queued or running, under a unique index, so two agents (or replicas) cannot both start one.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import exists, select, update
from sqlalchemy.exc import IntegrityError

from service.core.audit_log import add_entry
from service.core.clock import iso_utc
from service.core.runtime import Runtime
from service.db.models import BulkLinkRun, ConnectLink
from service.desk.affected import AffectedOps, AffectedUser, read_affected, selection_for, still_affected
from service.desk.boundary import raises_only_support_error
from service.desk.error_table import SupportError
from service.queue.store import PRIORITY_INTERACTIVE, enqueue
from troubleshooting.vocabulary import JobKind

if TYPE_CHECKING:
    from service.desk.support_desk import LinkIssued

log = logging.getLogger(__name__)

BULK_JOB = JobKind.BULK_LINKS
# Findings a new Connect link cures (their knowledge entries offer send_connect_link).
LINK_FINDINGS = ("needs_reauth", "revoked", "missing_permissions", "authorization_failed")
QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
CSV_HEADER = ["email", "athlete_id", "connect_link", "expires_at"]


@dataclass
class BulkTally:
    total: int
    sent: int = 0  # links issued and handed over (by DM, or in the file)
    to_file: int = 0  # of those, in the CSV file for the asking agent
    skipped: int = 0  # fixed meanwhile, or holding a live link
    failed: int = 0  # no link could be issued
    rows: list[list[str]] = field(default_factory=list)  # the CSV rows (links!): never logged, never stored

    @property
    def handled(self) -> int:
        return self.sent + self.skipped + self.failed

    def counts(self) -> dict[str, int]:
        return {"total": self.total, "sent": self.sent, "to_file": self.to_file, "skipped": self.skipped,
                "failed": self.failed}


@dataclass(frozen=True)
class BulkRun:
    id: int
    finding: str
    since: datetime | None
    force: bool
    requested_by: str
    agent_slack_id: str | None
    response_url: str | None
    state: str
    total: int

    @classmethod
    def of(cls, row: BulkLinkRun) -> BulkRun:
        return cls(row.id, row.finding, row.since, row.force, row.requested_by, row.agent_slack_id,
                   row.response_url, row.state, row.total)

    def to_dict(self) -> dict[str, Any]:
        return {"run_id": self.id, "finding": self.finding, "since": iso_utc(self.since), "force": self.force,
                "state": self.state, "total": self.total}


# Hands one issued link over: True when it went to the user by DM, False when it belongs in the file.
Deliver = Callable[[AffectedUser, dict[str, Any]], Awaitable[bool]]
Progress = Callable[[BulkTally], Awaitable[None]]


# The desk's `issue_connect_link(email, actor)`: a link issued and audited (LinkIssued, support_desk.py).
IssueLink = Callable[[str, str], Awaitable["LinkIssued"]]


@raises_only_support_error  # failures leave as SupportError only (service/desk/boundary.py)
class BulkLinksOps:
    """`desk.bulk_links`: start, look up and walk bulk runs. It selects users with `affected` and issues
    each link with the desk's own `issue_link`, so every link is audited like a single one."""

    def __init__(self, rt: Runtime, affected: AffectedOps, issue_link: IssueLink) -> None:
        self.rt = rt
        self._affected = affected
        self._issue_link = issue_link

    async def start(self, finding: str, since: str | None, actor: str, *, force: bool = False,
                               agent_slack_id: str | None = None, response_url: str | None = None,
                               queue: bool = True) -> BulkRun:
        """Register a run (and queue it for the worker when `queue`). Raises SupportError:
        `bad_argument` for a finding a link does not cure, `busy` while a run for it is active."""
        if finding not in LINK_FINDINGS:
            raise SupportError("bad_argument", f"Connect links cure {', '.join(LINK_FINDINGS)}; not {finding[:60]!r}")
        report = await self._affected.report(finding, since)
        rt, now = self.rt, self.rt.clock.now()
        row = BulkLinkRun(finding=finding, since=report.since, force=force, requested_by=actor,
                          agent_slack_id=agent_slack_id, response_url=response_url,
                          state=QUEUED if queue else RUNNING, active_key=finding, total=report.count, sent=0,
                          to_file=0, skipped=0, failed=0, created_at=now)
        try:
            async with rt.write() as session:
                session.add(row)
                await session.flush()
                if queue:
                    await enqueue(session, BULK_JOB, {"run_id": row.id}, now, priority=PRIORITY_INTERACTIVE,
                                  dedupe_key=f"bulk:{row.id}")
                add_entry(session, rt.clock, actor, "send_links_bulk", finding, "queued" if queue else "started",
                          f"run {row.id}: {report.count} user(s){' (force)' if force else ''}")
        except IntegrityError:
            active = await self._active_run(finding)
            who = f" (run {active.id}, asked by {active.requested_by})" if active else ""
            raise SupportError("busy", f"a bulk run of Connect links for {finding} is already under way{who}; "
                                       "wait for its report") from None
        return BulkRun.of(row)

    async def _active_run(self, finding: str) -> BulkRun | None:
        async with self.rt.sessions() as session:
            row = (await session.execute(select(BulkLinkRun).where(BulkLinkRun.active_key == finding))).scalar()
            return BulkRun.of(row) if row is not None else None

    async def run(self, run_id: int) -> BulkRun | None:
        async with self.rt.sessions() as session:
            row = await session.get(BulkLinkRun, run_id)
            return BulkRun.of(row) if row is not None else None

    async def send(self, run: BulkRun, deliver: Deliver, progress: Progress) -> BulkTally:
        """Walk the run's users (see the module docstring); the run ends done, or failed with the
        reason when something unexpected stops it. Returns the tally (with the file's rows)."""
        rt = self.rt
        from service.desk.observations import thresholds_from

        await self._set(run.id, state=RUNNING)
        thresholds = thresholds_from(rt.settings)
        report = await read_affected(rt, run.finding, run.since, thresholds, listed=None)
        tally = BulkTally(len(report.users))
        async with rt.sessions() as session:
            chosen = await selection_for(session, run.finding, thresholds, rt.clock.now())
        try:
            for user in report.users:
                await self._one(run, user, chosen, deliver, tally)
                await progress(tally)
        except BaseException as exc:
            await self._set(run.id, state=FAILED, active_key=None, error=type(exc).__name__,
                            finished_at=rt.clock.now(), **_counts(tally))
            raise
        await self._set(run.id, state=DONE, active_key=None, finished_at=rt.clock.now(), **_counts(tally))
        return tally

    async def _one(self, run: BulkRun, user: AffectedUser, chosen: Any, deliver: Deliver, tally: BulkTally) -> None:
        rt = self.rt
        async with rt.sessions() as session:
            fixed = chosen is None or not await still_affected(session, chosen, user.user_id)
            live = not run.force and (await session.execute(select(exists().where(
                ConnectLink.user_id == user.user_id, ConnectLink.used_at.is_(None),
                ConnectLink.expires_at > rt.clock.now())))).scalar()
        if fixed or live:
            tally.skipped += 1
            return
        try:
            issued = (await self._issue_link(user.email, run.requested_by)).to_dict()
        except Exception as exc:  # noqa: BLE001 - one user's failure does not stop the run
            log.warning("bulk run %s: no link could be issued for user %s (%s)", run.id, user.user_id,
                        type(exc).__name__)
            tally.failed += 1
            return
        try:
            by_dm = await deliver(user, issued)
        except Exception as exc:  # noqa: BLE001 - the link still reaches the agent, in the file
            log.warning("bulk run %s: direct message to user %s failed (%s); the link goes in the file",
                        run.id, user.user_id, type(exc).__name__)
            by_dm = False
        tally.sent += 1
        if not by_dm:
            tally.to_file += 1
            tally.rows.append([issued["email"], str(user.athlete_id or ""), issued["url"], issued["expires_at"]])

    async def _set(self, run_id: int, **values: Any) -> None:
        async with self.rt.write() as session:
            await session.execute(update(BulkLinkRun).where(BulkLinkRun.id == run_id).values(**values))


def _counts(tally: BulkTally) -> dict[str, int]:
    return {"sent": tally.sent, "to_file": tally.to_file, "skipped": tally.skipped, "failed": tally.failed}
