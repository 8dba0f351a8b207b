"""The pending bound on unsigned activity events, decided when they are stored (see `unconfirmed`).

At most FITGLUE_PENDING_EVENTS_PER_ATHLETE events of one athlete wait to be checked at Strava.
An activity event beyond that is stored settled (`ignored`, with why) and ONE catch-up job per
athlete stands in for all of them: it lists the athlete's activities since the first such event
(a call per 100 activities, counted against the same caps as checking events), so a real
activity among a flood of forged ids is still fetched, at a bounded cost, and a real event never
queues behind more than the bound. The catch-up runs at event priority, so it takes its turn
among the events instead of starving behind them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from service.background.webhooks.processing import known_to_fail
from service.core.clock import to_epoch
from service.queue.catch_up import JOB_KIND as CATCH_UP
from service.queue.catch_up import OVERFLOW_RUN, catch_up_after_s, page_key
from service.queue.store import PRIORITY_EVENT, job_row
from troubleshooting.vocabulary import ConnectionStatus

TOO_MANY_PENDING = ("{pending} events of this athlete were already waiting to be checked "
                    "(FITGLUE_PENDING_EVENTS_PER_ATHLETE): not checked one by one; a catch-up listing the "
                    "athlete's activities fetches whatever is real")


@dataclass(frozen=True)
class Connected:
    """What the intake knows of the athlete an event names."""
    conn_id: int
    user_id: int
    scopes: str
    status: str


@dataclass
class IntakePlan:
    jobs: list[tuple[int, int | None]] = field(default_factory=list)  # (event id, user id)
    settled: list[tuple[int, str]] = field(default_factory=list)  # (event id, why): stored ignored
    catch_ups: dict[int, tuple[Connected, datetime]] = field(default_factory=dict)  # athlete -> (conn, since)


def plan_intake(new: list[tuple[int, str, int, datetime]], connections: dict[int, Connected],
                pending: dict[int, int], bound: int) -> IntakePlan:
    """For new events (event id, object type, owner athlete id, received at), in arrival order:
    which get a job, which are stored settled (and why), and which athletes need one catch-up
    standing in for the activity events beyond `bound` pending ones. `pending` is each athlete's
    event jobs already waiting (counted before this batch)."""
    plan = IntakePlan()
    waiting = dict(pending)
    for event_id, object_type, owner, received_at in new:
        conn = connections.get(owner)
        reason = known_to_fail(object_type, conn.scopes if conn is not None else None)
        if reason is not None:
            plan.settled.append((event_id, reason))
            continue
        if conn is not None and conn.status == ConnectionStatus.CONNECTED and object_type == "activity":
            if waiting.get(owner, 0) >= bound:
                plan.settled.append((event_id, TOO_MANY_PENDING.format(pending=waiting[owner])))
                plan.catch_ups.setdefault(owner, (conn, received_at))
                continue
            waiting[owner] = waiting.get(owner, 0) + 1
        plan.jobs.append((event_id, conn.user_id if conn is not None else None))
    return plan


def catch_up_row(conn: Connected, athlete_id: int, since: datetime, now: datetime, lookback_s: int) -> dict[str, Any]:
    """The job row of the catch-up standing in for an athlete's events beyond the bound."""
    payload = {"connection_id": conn.conn_id, "athlete_id": athlete_id, "page": 1,
               "after": catch_up_after_s(since, lookback_s), "run": f"{OVERFLOW_RUN}-{to_epoch(since)}"}
    return job_row(CATCH_UP, payload, now, priority=PRIORITY_EVENT, dedupe_key=page_key(payload),
                   user_id=conn.user_id)


def waiting_catch_up_pattern(conn_id: int) -> str:
    """LIKE pattern of the dedupe key of a bound's catch-up not started yet (its first page): while
    one waits, it covers every later event too, so no second one is queued."""
    return f"catch_up:{conn_id}:%:{OVERFLOW_RUN}-%:1"
