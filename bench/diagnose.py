"""Diagnosis latency at scale: SupportDesk.diagnose for random users of a large database.

Seeds 100,000 users (connections in every status, one to three OAuth attempts each, queued jobs,
webhook registrations, an audit log) and 1,000,000 webhook events, then times diagnoses of random
users in-process, by e-mail and by athlete id. The live subscription look goes to the local Strava
stand-in (served in this process, as the tests do) and is cached for a minute like in production.
Prints p50/p90/p99/max, peak RSS and the machine. Target: p99 <= 50 ms.

    python bench/diagnose.py                      # 100,000 users, 1,000,000 events, 3,000 diagnoses
    python bench/diagnose.py --smoke              # 2,000 users, 20,000 events, 300 diagnoses (CI)
    python bench/diagnose.py --postgres postgresql+asyncpg://user@host/db   # an EMPTY database
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
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import insert  # noqa: E402

from bench._common import machine, peak_rss_mb, percentile  # noqa: E402
from service.app.bootstrap import open_runtime  # noqa: E402
from service.core.clock import SystemClock  # noqa: E402
from service.core.runtime import Runtime  # noqa: E402
from service.core.settings import Settings  # noqa: E402
from service.db.migrate import upgrade_to_head  # noqa: E402
from service.db.models import (  # noqa: E402
    AuditEntry,
    Job,
    OAuthAttempt,
    RateLimitState,
    StravaConnection,
    User,
    WebhookEvent,
    WebhookRegistration,
)
from service.desk.support_desk import SupportDesk  # noqa: E402
from standin import StandinConfig, start_standin  # noqa: E402

FIRST_ATHLETE = 7_000_000
SCOPES = "activity:read_all,activity:write,profile:read_all,read"
TARGET_P99_MS = 50.0


def _status(n: int) -> str:
    """90% connected, 4% needs_reauth, 1% revoked, 5% not connected."""
    bucket = n % 100
    if bucket < 90:
        return "connected"
    if bucket < 94:
        return "needs_reauth"
    if bucket < 95:
        return "revoked"
    return "not_connected"


async def _insert(rt: Runtime, model: Any, rows: list[dict[str, Any]]) -> None:
    if rows:
        async with rt.sessions() as session, session.begin():
            await session.execute(insert(model), rows)


async def seed(rt: Runtime, users: int, events: int, chunk: int = 10_000) -> None:
    now = rt.clock.now()
    rng = random.Random(7)
    fake_token = rt.cipher.encrypt("bench-token-never-used")
    attempt_no = 0
    for start in range(0, users, chunk):
        user_rows, conn_rows, attempt_rows, job_rows = [], [], [], []
        for n in range(start, min(users, start + chunk)):
            status = _status(n)
            connected_at = now - timedelta(days=rng.randint(1, 400))
            email = f"athlete{n}@bench.example"
            user_rows.append({"id": n + 1, "email": email, "email_normalized": email, "created_at": connected_at})
            live = status == "connected"
            conn_rows.append({
                "user_id": n + 1, "athlete_id": FIRST_ATHLETE + n if status != "not_connected" else None,
                "status": status, "granted_scopes": SCOPES if status != "not_connected" else None,
                "access_token_enc": fake_token if live else None, "refresh_token_enc": fake_token if live else None,
                "expires_at": now + timedelta(minutes=rng.randint(5, 360)) if live else None,
                "connected_at": connected_at if status != "not_connected" else None,
                "last_refresh_at": now - timedelta(hours=rng.randint(1, 6)) if live else None,
                "refresh_failures": 1 if n % 50 == 0 else 0,
                "last_refresh_error_kind": "transient" if n % 50 == 0 else None,
                "last_refresh_error": "token refresh: Strava answered 503" if n % 50 == 0 else None,
                "last_refresh_error_at": now - timedelta(minutes=3) if n % 50 == 0 else None,
                "status_changed_at": connected_at, "updated_at": now,
            })
            for k in range(1 + n % 3):
                attempt_no += 1
                started = connected_at - timedelta(minutes=10 * (k + 1))
                outcome = "connected" if k == 0 else rng.choice(["denied", "exchange_failed", "partial"])
                attempt_rows.append({
                    "user_id": n + 1, "state_hash": f"{attempt_no:064x}", "browser_hash": "b" * 64,
                    "started_at": started, "expires_at": started + timedelta(minutes=10),
                    "finished_at": started + timedelta(seconds=40), "outcome": outcome,
                    "reason": None if outcome == "connected" else "bench", "athlete_id": FIRST_ATHLETE + n,
                    "granted_scopes": SCOPES,
                })
            if n % 10 == 0:
                job_rows.append({
                    "kind": "fetch_activity", "payload": "{}", "priority": 10,
                    "run_after": now + timedelta(minutes=rng.randint(0, 15)), "attempts": 0,
                    "state": "queued" if n % 20 == 0 else "done",
                    "waiting_for": "rate_limit" if n % 40 == 0 else None, "user_id": n + 1, "created_at": now,
                })
        await _insert(rt, User, user_rows)
        await _insert(rt, StravaConnection, conn_rows)
        await _insert(rt, OAuthAttempt, attempt_rows)
        await _insert(rt, Job, job_rows)

    for start in range(0, events, chunk):
        rows = []
        for e in range(start, min(events, start + chunk)):
            owner = FIRST_ATHLETE + rng.randrange(users)
            received = now - timedelta(seconds=rng.randint(0, 30 * 86400))
            rows.append({
                "dedupe_key": f"131300:activity:{e}:create:{e}:{{}}", "received_at": received,
                "subscription_id": 131300, "object_type": "activity", "object_id": 10_000_000 + e,
                "aspect_type": "create", "owner_id": owner, "event_time": int(received.timestamp()),
                "updates": "{}", "state": "processed", "processed_at": received,
            })
        await _insert(rt, WebhookEvent, rows)

    await _insert(rt, WebhookRegistration, [
        {"at": now - timedelta(days=d), "actor": "scheduler", "outcome": "unchanged", "error": None, "steps": "[]",
         "subscription_id": 131300} for d in range(30, 0, -1)])
    await _insert(rt, RateLimitState, [
        {"budget": "overall", "limit_15min": 200, "limit_daily": 2000, "usage_15min": 40, "usage_daily": 900,
         "observed_at": now, "counted_15min": 40, "counted_daily": 900},
        {"budget": "read", "limit_15min": 100, "limit_daily": 1000, "usage_15min": 30, "usage_daily": 700,
         "observed_at": now, "counted_15min": 30, "counted_daily": 700}])
    for start in range(0, users, chunk):
        await _insert(rt, AuditEntry, [
            {"at": now, "actor": "cli:bench", "action": "issue_connect_link", "target": f"athlete{n}@bench.example",
             "result": "ok", "detail": None, "duration_ms": 3} for n in range(start, min(users, start + chunk))])


async def run(users: int, events: int, diagnoses: int, database_url: str | None) -> float:
    standin, runner, base = await start_standin("127.0.0.1", 0, config=StandinConfig())
    folder = Path(tempfile.mkdtemp(prefix="fitglue-bench-diagnose-"))
    settings = Settings.from_values(
        database_url=database_url or f"sqlite+aiosqlite:///{folder / 'bench.db'}",
        secret_key="bench-secret-key-0123456789", strava_client_id=standin.config.client_id,
        strava_client_secret=standin.config.client_secret, strava_oauth_url=f"{base}/oauth",
        strava_api_url=f"{base}/api/v3", strava_webhook_verify_token="v", strava_athlete_capacity=200_000)
    rt = await open_runtime(settings, SystemClock())
    # The app's subscription, as Strava lists it (created directly: nothing here answers its validation).
    standin.subscription = {"id": 131300, "resource_state": 2, "application_id": 1001,
                            "callback_url": settings.webhook_callback_url,
                            "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"}
    try:
        await upgrade_to_head(rt.engine)
        seeded = time.perf_counter()
        await seed(rt, users, events)
        seed_s = time.perf_counter() - seeded
        desk = SupportDesk(rt)
        rng = random.Random(11)
        for n in range(min(50, users)):  # warm-up: connection pool, statement caches
            await desk.diagnose(f"athlete{n}@bench.example")
        timings: list[float] = []
        statuses: dict[str, int] = {}
        for i in range(diagnoses):
            n = rng.randrange(users)
            who = str(FIRST_ATHLETE + n) if i % 4 == 0 and _status(n) != "not_connected" else \
                f"athlete{n}@bench.example"
            started = time.perf_counter()
            diagnosis = await desk.diagnose(who)
            timings.append((time.perf_counter() - started) * 1000)
            statuses[diagnosis.status] = statuses.get(diagnosis.status, 0) + 1
        p50, p90, p99 = (percentile(timings, p) for p in (50, 90, 99))
        backend = "PostgreSQL" if database_url else "SQLite (WAL, file in a temp dir)"
        print(f"machine: {machine()}")
        print(f"database: {backend}; seeded {users:,} users, {events:,} events in {seed_s:.1f} s")
        print(f"diagnoses: {diagnoses:,} random users (1 in 4 by athlete id), in-process, sequential; "
              f"subscription look via the local stand-in ({standin.count_calls('GET', '/api/v3/push_subscriptions')} "
              f"live calls, cached 60 s); statuses {dict(sorted(statuses.items()))}")
        print(f"latency: p50 {p50:.2f} ms, p90 {p90:.2f} ms, p99 {p99:.2f} ms, max {max(timings):.2f} ms "
              f"(target p99 <= {TARGET_P99_MS:.0f} ms: {'met' if p99 <= TARGET_P99_MS else 'MISSED'})")
        print(f"peak RSS: {peak_rss_mb():.0f} MB")
        return p99
    finally:
        await rt.close()
        await runner.cleanup()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="2,000 users, 20,000 events, 300 diagnoses")
    parser.add_argument("--users", type=int)
    parser.add_argument("--events", type=int)
    parser.add_argument("--diagnoses", type=int)
    parser.add_argument("--postgres", metavar="URL", help="an empty postgresql+asyncpg:// database to use")
    args = parser.parse_args()
    users = args.users or (2_000 if args.smoke else 100_000)
    events = args.events or (20_000 if args.smoke else 1_000_000)
    diagnoses = args.diagnoses or (300 if args.smoke else 3_000)
    p99 = asyncio.run(run(users, events, diagnoses, args.postgres))
    # The smoke run only shows the benchmark still works (CI machines are noisy); a full run is judged.
    return 0 if args.smoke or p99 <= TARGET_P99_MS else 1


if __name__ == "__main__":
    sys.exit(main())
