"""Processing throughput: a backlog of activity `create` events drained by the queue worker.

10,000 stored events (and their jobs, as the intake stores them) for 500 connected athletes; the
Strava stand-in runs in its own process, answers every call after 50 ms and has a budget no run
reaches; the caps on unconfirmed work are lifted for the run. The worker runs as in `fitglue
worker` (its loop, batches, FITGLUE_WORKER_CONCURRENCY at its default of 8). Baseline: the
concurrency-bound ideal ceil(N / C) x 50 ms, what the drain would take if our own work (claims,
reads, the budget ledger, settling) cost nothing. Prints ideal/measured (targets: >= 0.8 on SQLite,
>= 0.7 on PostgreSQL) and checks each event was processed with exactly one call.

    python bench/processing_throughput.py                          # SQLite, 10,000 events
    python bench/processing_throughput.py --database postgres      # a fresh PostgreSQL database
    python bench/processing_throughput.py --concurrency 16
    python bench/processing_throughput.py --smoke                  # 400 events, 20 athletes, for CI
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, insert, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import StandinProcess, machine, peak_rss_mb, seed_connections  # noqa: E402
from bench._servers import scratch_database  # noqa: E402
from service.app.bootstrap import open_runtime  # noqa: E402
from service.background.job_handlers import make_worker  # noqa: E402
from service.core.runtime import Runtime  # noqa: E402
from service.core.settings import Settings  # noqa: E402
from service.db.migrate import upgrade_to_head  # noqa: E402
from service.db.models import Job, WebhookEvent  # noqa: E402
from service.queue.store import job_row  # noqa: E402
from service.subscription.state import JOB_KIND, event_job_key, remember_subscription  # noqa: E402
from standin import StandinConfig  # noqa: E402

SUBSCRIPTION_ID = 424242
TARGETS = {"sqlite": 0.8, "postgres": 0.7}
UNCAPPED = 10**9


async def seed_backlog(rt: Runtime, standin: StandinProcess, events: int, athletes: int) -> None:
    """`athletes` connected athletes, `events` stored create events for their activities, one job each."""
    now = rt.clock.now()
    grants = await standin.mint(rt.http, athletes, seconds_left=6 * 3600)
    await seed_connections(rt.sessions, rt.cipher, athletes, now, timedelta(hours=6), grants)
    user_of = {grant[0]: n + 1 for n, grant in enumerate(grants)}
    made = await standin.activities(rt.http, [grant[0] for grant in grants], math.ceil(events / athletes))
    made = made[:events]
    async with rt.write() as session:
        await remember_subscription(session, SUBSCRIPTION_ID, now)
    for start in range(0, len(made), 2000):
        chunk = list(enumerate(made[start:start + 2000], start=start + 1))
        async with rt.write() as session:
            await session.execute(insert(WebhookEvent), [
                {"id": n, "dedupe_key": f"bench:{n}", "received_at": now, "subscription_id": SUBSCRIPTION_ID,
                 "object_type": "activity", "object_id": activity, "aspect_type": "create", "owner_id": athlete,
                 "event_time": 1_800_000_000 + n, "updates": "{}", "state": "new"} for n, (athlete, activity) in chunk])
            await session.execute(insert(Job), [
                job_row(JOB_KIND, {"event_id": n}, now, dedupe_key=event_job_key(n), user_id=user_of[athlete])
                for n, (athlete, _activity) in chunk])


async def finished(rt: Runtime) -> int:
    async with rt.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(Job).where(Job.state.in_(("done", "failed")))))


async def drain(rt: Runtime, events: int, timeout: float) -> float:
    """Run the worker loop until every job finished; seconds taken."""
    worker = make_worker(rt)
    started = time.perf_counter()
    worker.start()
    try:
        while await finished(rt) < events:
            if time.perf_counter() - started > timeout:
                raise SystemExit(f"not drained after {timeout:.0f} s")
            await asyncio.sleep(0.2)
        return time.perf_counter() - started
    finally:
        await worker.stop()


async def run(database: str, events: int, athletes: int, concurrency: int, latency: float) -> float:
    standin = StandinProcess(latency, unlimited=True)
    try:
        async with scratch_database(database) as url:
            settings = Settings.from_values(
                database_url=url, secret_key="bench-secret-key-0123456789", strava_client_id=StandinConfig.client_id,
                strava_client_secret=StandinConfig.client_secret, strava_oauth_url=f"{standin.base_url}/oauth",
                strava_api_url=f"{standin.base_url}/api/v3", strava_webhook_verify_token="v",
                worker_concurrency=concurrency, unconfirmed_calls_per_athlete=UNCAPPED,
                unconfirmed_calls_per_window=UNCAPPED, pending_events_per_athlete=UNCAPPED)
            rt = await open_runtime(settings)
            try:
                await upgrade_to_head(rt.engine)
                await seed_backlog(rt, standin, events, athletes)
                ideal = math.ceil(events / concurrency) * latency
                elapsed = await drain(rt, events, timeout=max(30.0, 10 * ideal))
                async with rt.sessions() as session:
                    processed = int(await session.scalar(select(func.count()).select_from(WebhookEvent).where(
                        WebhookEvent.state == "processed")))
                calls = (await standin.calls(rt.http))["api"]
            finally:
                await rt.close()
    finally:
        standin.stop()
    ratio = ideal / elapsed
    print(f"[{database}] {events} create events for {athletes} athletes, concurrency {concurrency}, stand-in "
          f"latency {latency * 1000:.0f} ms (own process)")
    print(f"  measured {elapsed:.2f} s ({events / elapsed:.0f} events/s); ideal {ideal:.2f} s; "
          f"ratio ideal/measured = {ratio:.2f} (target >= {TARGETS[database]:.1f})")
    print(f"  processed {processed}, Strava API calls {calls}; peak RSS {peak_rss_mb():.0f} MB")
    if processed != events or calls != events:
        raise SystemExit(f"expected {events} events processed with one call each, got {processed} / {calls}")
    return ratio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="400 events for 20 athletes, no target enforced")
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--athletes", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=Settings.model_fields["worker_concurrency"].default)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--database", default="sqlite", choices=sorted(TARGETS))
    args = parser.parse_args()
    if args.smoke:
        args.events, args.athletes = 400, 20
    print(f"machine: {machine()}")
    ratio = asyncio.run(run(args.database, args.events, args.athletes, args.concurrency, args.latency))
    if not args.smoke and ratio < TARGETS[args.database]:
        print(f"MISSED: ratio {ratio:.2f} < {TARGETS[args.database]}")
        sys.exit(1)


if __name__ == "__main__":
    main()
