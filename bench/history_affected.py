"""History and affected-list latency at scale (issue 13).

Seeds the diagnosis benchmark's database (100,000 users in every status, OAuth attempts, jobs, an
audit log, 1,000,000 webhook events) plus one heavy user with 10,000 webhook events (and their
10,000 event jobs), 2,000 connection-history rows, 500 agent actions and 200 Connect links. Then,
in-process and one after another:

- `desk.history.page` of the heavy user: first pages and pages deep in the timeline (by cursor),
  and of random users. Target: p99 <= 50 ms.
- `desk.affected.report` for each of needs_reauth, revoked, missing_permissions,
  token_refresh_failing, authorization_failed and webhook_silent (count, 20 users, by day).
  Target: p99 <= 200 ms.

    python bench/history_affected.py              # 100,000 users, 1,000,000 events
    python bench/history_affected.py --smoke      # 2,000 users, 20,000 events (CI)
    python bench/history_affected.py --postgres postgresql+asyncpg://user@host/EMPTY_DB
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import func, select, update  # noqa: E402

from bench._common import machine, peak_rss_mb, percentile  # noqa: E402
from bench.diagnose import FIRST_ATHLETE, _insert, seed  # noqa: E402
from service.app.bootstrap import open_runtime  # noqa: E402
from service.core.clock import SystemClock  # noqa: E402
from service.core.runtime import Runtime  # noqa: E402
from service.core.settings import Settings  # noqa: E402
from service.db.migrate import upgrade_to_head  # noqa: E402
from service.db.models import (  # noqa: E402
    AuditEntry,
    ConnectionHistory,
    ConnectLink,
    Job,
    OAuthAttempt,
    StravaConnection,
    WebhookEvent,
)
from service.desk.affected import AFFECTED_FINDINGS  # noqa: E402
from service.desk.support_desk import SupportDesk  # noqa: E402

HISTORY_P99_MS, AFFECTED_P99_MS = 50.0, 200.0
HEAVY = "athlete0@bench.example"  # user 1, connected (bench.diagnose's status rule)


async def seed_heavy_user(rt: Runtime, events: int) -> None:
    """User 1's long history: `events` webhook events with their jobs, and a bit of every other kind."""
    now, athlete = rt.clock.now(), FIRST_ATHLETE
    for start in range(0, events, 5000):
        span = range(start, min(events, start + 5000))
        await _insert(rt, WebhookEvent, [{
            "dedupe_key": f"heavy:{e}", "received_at": now - timedelta(minutes=5 * e), "subscription_id": 131300,
            "object_type": "activity", "object_id": 90_000_000 + e, "aspect_type": "create", "owner_id": athlete,
            "event_time": 0, "updates": "{}", "state": "processed" if e % 7 else "ignored",
            "processed_at": now - timedelta(minutes=5 * e), "error": None if e % 7 else "the grant cannot read this"}
            for e in span])
        await _insert(rt, Job, [{
            "kind": "webhook_event", "payload": "{}", "priority": 10, "run_after": now - timedelta(minutes=5 * e),
            "attempts": 1, "state": "done", "user_id": 1, "dedupe_key": f"event:heavy{e}",
            "created_at": now - timedelta(minutes=5 * e)} for e in span])
    await _insert(rt, ConnectionHistory, [{
        "user_id": 1, "at": now - timedelta(hours=6 * k), "kind": "refresh_failed" if k % 3 else "refresh_ok",
        "summary": "token refresh failed (transient)" if k % 3 else "token refreshed", "detail": "transient",
        "day": None if k % 3 else f"d{k}", "count": 1} for k in range(2000)])
    await _insert(rt, AuditEntry, [{
        "at": now - timedelta(hours=k), "actor": "slack:UBENCH", "action": "slack_command:diagnose", "target": HEAVY,
        "result": "allowed", "detail": None, "duration_ms": 2} for k in range(500)])
    await _insert(rt, ConnectLink, [{
        "id": f"heavy-link-{k}", "user_id": 1, "issued_by": "cli:bench", "created_at": now - timedelta(days=k),
        "expires_at": now - timedelta(days=k) + timedelta(days=7)} for k in range(200)])


async def shape_findings(rt: Runtime) -> None:
    """Give the seeded population every finding `affected` knows (a few percent each)."""
    now = rt.clock.now()
    async with rt.write() as session:
        # bench.diagnose marks every 50th user's refresh as failing; the run began when it failed.
        await session.execute(update(StravaConnection).where(StravaConnection.refresh_failures > 0)
                              .values(refresh_failing_since=StravaConnection.last_refresh_error_at))
        await session.execute(update(StravaConnection).where(StravaConnection.user_id % 37 == 0,
                                                             StravaConnection.status == "connected")
                              .values(granted_scopes="activity:read_all,read"))
        # What processing leaves: each connection's newest event (bench.diagnose seeds events directly).
        newest = (select(func.max(WebhookEvent.received_at)).where(WebhookEvent.owner_id == StravaConnection.athlete_id)
                  .scalar_subquery())
        await session.execute(update(StravaConnection).where(StravaConnection.status == "connected")
                              .values(last_event_at=newest))
        await session.execute(update(StravaConnection).where(StravaConnection.user_id % 41 == 0,
                                                             StravaConnection.status == "connected")
                              .values(last_event_at=now - timedelta(days=30)))
        await session.execute(update(StravaConnection).where(StravaConnection.status == "not_connected")
                              .values(connected_at=None))
        # Half the never-connected users' attempts were refused at Strava two hours ago.
        never = select(StravaConnection.user_id).where(StravaConnection.status == "not_connected",
                                                       StravaConnection.user_id % 2 == 0)
        await session.execute(update(OAuthAttempt).where(OAuthAttempt.user_id.in_(never))
                              .values(outcome="denied", started_at=now - timedelta(hours=2)))


async def timed(call, runs: int) -> tuple[list[float], object]:
    timings, last = [], None
    for _ in range(runs):
        started = time.perf_counter()
        last = await call()
        timings.append((time.perf_counter() - started) * 1000)
    return timings, last


def line(name: str, timings: list[float], target: float) -> str:
    p50, p90, p99 = (percentile(timings, p) for p in (50, 90, 99))
    return (f"{name}: p50 {p50:.2f} ms, p90 {p90:.2f} ms, p99 {p99:.2f} ms, max {max(timings):.2f} ms "
            f"(target p99 <= {target:.0f} ms: {'met' if p99 <= target else 'MISSED'})")


async def run(users: int, events: int, heavy_events: int, samples: int, database_url: str | None) -> bool:
    folder = Path(tempfile.mkdtemp(prefix="fitglue-bench-history-"))
    settings = Settings.from_values(database_url=database_url or f"sqlite+aiosqlite:///{folder / 'bench.db'}",
                                    secret_key="bench-secret-key-0123456789")
    rt = await open_runtime(settings, SystemClock())
    try:
        await upgrade_to_head(rt.engine)
        seeded = time.perf_counter()
        await seed(rt, users, events)
        await seed_heavy_user(rt, heavy_events)
        await shape_findings(rt)
        if database_url:  # what autovacuum does after a bulk load: statistics and the visibility map
            async with rt.engine.connect() as conn:
                await (await conn.execution_options(isolation_level="AUTOCOMMIT")).exec_driver_sql("VACUUM ANALYZE")
        seed_s = time.perf_counter() - seeded
        desk, rng = SupportDesk(rt), random.Random(5)
        for _ in range(20):  # warm-up
            await desk.history.page(HEAVY, 50)
        first, page = await timed(lambda: desk.history.page(HEAVY, 50), samples)
        cursors, before = [], None
        for _ in range(40):  # cursors deep into the timeline, then read each page again, timed
            page = await desk.history.page(HEAVY, 50, before)
            before = page.next_before
            cursors.append(before)
        deep_iter = iter(cursors * (samples // len(cursors) + 1))
        deep, _ = await timed(lambda: desk.history.page(HEAVY, 50, next(deep_iter)), samples)
        randoms, _ = await timed(lambda: desk.history.page(f"athlete{rng.randrange(users)}@bench.example", 15), samples)
        backend = "PostgreSQL" if database_url else "SQLite (WAL, file in a temp dir)"
        print(f"machine: {machine()}")
        print(f"database: {backend}; seeded {users:,} users, {events:,} events + a user with {heavy_events:,} "
              f"events in {seed_s:.1f} s")
        ok = True
        for name, timings in (("history, heavy user, first page of 50", first),
                              ("history, heavy user, pages 2-40 of 50 (by cursor)", deep),
                              ("history, random users, 15 entries", randoms)):
            print(line(name, timings, HISTORY_P99_MS))
            ok &= percentile(timings, 99) <= HISTORY_P99_MS
        for finding in AFFECTED_FINDINGS:
            await desk.affected.report(finding)
            timings, report = await timed(lambda f=finding: desk.affected.report(f), max(20, samples // 10))
            print(line(f"affected {finding} ({report.count:,} users)", timings, AFFECTED_P99_MS))
            ok &= percentile(timings, 99) <= AFFECTED_P99_MS
        print(f"peak RSS: {peak_rss_mb():.0f} MB")
        return ok
    finally:
        await rt.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="2,000 users, 20,000 events, 1,000 heavy events")
    parser.add_argument("--postgres", metavar="URL", help="an empty postgresql+asyncpg:// database to use")
    args = parser.parse_args()
    users, events = (2_000, 20_000) if args.smoke else (100_000, 1_000_000)
    heavy, samples = (1_000, 100) if args.smoke else (10_000, 1_000)
    ok = asyncio.run(run(users, events, heavy, samples, args.postgres))
    return 0 if args.smoke or ok else 1


if __name__ == "__main__":
    sys.exit(main())
