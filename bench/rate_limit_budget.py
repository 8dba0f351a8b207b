"""Rate-limit budget use: a backlog of 5,000 activity fetches drained through the queue against the
Strava stand-in's read budget (100 per 15 minutes, 1,000 per day), over simulated windows on the
injected clock (no sleeping: the clock jumps to each deferred job's resume time).

Baseline: the read budget itself, i.e. the calls Strava would have allowed in the windows the
drain took. Prints the share used per full day (target >= 95 %) and the 429s our own calls caused
(target 0).

    python bench/rate_limit_budget.py           # 5,000 jobs, Strava's default read limits
    python bench/rate_limit_budget.py --smoke   # 300 jobs with limits 20/15 min, 100/day
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import machine  # noqa: E402


async def run(jobs: int, read_limits: tuple[int, int], athletes: int = 25) -> None:
    from aiohttp.test_utils import TestClient, TestServer
    from sqlalchemy import func, select

    from service.app.bootstrap import open_runtime
    from service.app.factory import build_app
    from service.background.job_handlers import make_worker
    from service.core.clock import ManualClock
    from service.core.settings import Settings
    from service.db.migrate import upgrade_to_head
    from service.db.models import Job
    from service.desk.support_desk import SupportDesk
    from standin import StandinConfig, start_standin
    from tests.webhook_support import connect_directly, point_public_url_at

    clock = ManualClock(datetime(2026, 11, 2, 0, 0, tzinfo=UTC))
    config = StandinConfig(read_limits=read_limits, overall_limits=(read_limits[0] * 2, read_limits[1] * 2))
    standin, standin_runner, base = await start_standin("127.0.0.1", 0, config=config, clock=clock)
    folder = Path(tempfile.mkdtemp(prefix="fitglue-budget-"))
    settings = Settings.from_values(
        database_url=f"sqlite+aiosqlite:///{folder / 'budget.db'}", secret_key="budget-bench-key-01234",
        strava_client_id=config.client_id, strava_client_secret=config.client_secret,
        strava_oauth_url=f"{base}/oauth", strava_api_url=f"{base}/api/v3", strava_webhook_verify_token="v",
        # Every event here is real and a bench athlete has 200 of them queued: lift the caps and the
        # pending bound on checking unsigned events so the drain measures Strava's budget, not ours.
        job_max_attempts=1000, unconfirmed_calls_per_athlete=1_000_000, unconfirmed_calls_per_window=1_000_000,
        pending_events_per_athlete=1_000_000)
    rt = await open_runtime(settings, clock)
    await upgrade_to_head(rt.engine)
    client = TestClient(TestServer(build_app(rt, background=False)))
    await client.start_server()
    try:
        point_public_url_at(rt, client)
        assert (await SupportDesk(rt).webhooks.reregister_webhook("bench")).ok
        owners = [await connect_directly(rt, standin, f"budget{i}@example.com") for i in range(athletes)]
        subscription = standin.subscription["id"] if standin.subscription else 0
        for n in range(jobs):
            owner = owners[n % athletes]
            activity = standin.add_activity(owner, name=f"Backlog {n}")
            event = {"aspect_type": "create", "event_time": 1_700_000_000 + n, "object_id": activity,
                     "object_type": "activity", "owner_id": owner, "subscription_id": subscription, "updates": {}}
            response = await client.post("/webhooks/strava", json=event)
            assert response.status == 200
        started_at, wall = clock.now(), time.perf_counter()
        calls_before = len(standin.calls)
        worker = make_worker(rt)
        while True:
            await worker.run_pending()
            async with rt.sessions() as session:
                left = await session.scalar(select(func.count(Job.id)).where(Job.state.in_(("queued", "running"))))
                next_at = await session.scalar(select(func.min(Job.run_after)).where(Job.state == "queued"))
            if not left:
                break
            if next_at is not None and next_at > clock.now():
                clock.set(next_at)
                continue
            # Due jobs the worker would not start: the budget is closed for background work.
            resumes = await rt.ledger.background_resumes_at() if rt.ledger else None
            if resumes is not None and resumes > clock.now():
                clock.set(resumes)
            else:
                clock.advance(1)
        finished_at = clock.now()
        wall = time.perf_counter() - wall

        api_calls = [c for c in standin.calls[calls_before:] if c.path.startswith("/api/v3/activities")]
        too_many = sum(1 for c in api_calls if c.status == 429)
        per_day = Counter(c.at.date() for c in api_calls if c.status != 429)
        async with rt.sessions() as session:
            states = dict((await session.execute(select(Job.state, func.count(Job.id)).group_by(Job.state))).all())
        full_days = sorted(per_day)[:-1] or sorted(per_day)
        shares = [per_day[d] / read_limits[1] for d in full_days]
        print(f"machine: {machine()}")
        print(f"backlog: {jobs} activity fetches, read limits {read_limits[0]}/15 min and {read_limits[1]}/day, "
              f"reserve for interactive work {rt.settings.rate_limit_reserve_pct} %")
        print(f"  drained in {finished_at - started_at} simulated ({wall:.1f} s of real time); jobs {states}")
        print("  read budget used per full day: " + ", ".join(f"{d}: {per_day[d]}" for d in full_days)
              + f" -> {min(shares):.1%} .. {max(shares):.1%} of {read_limits[1]} (target >= 95 %)")
        print(f"  429s caused by our calls: {too_many} (target 0)")
        if states.get("done", 0) != jobs:
            raise SystemExit("not every job finished")
    finally:
        await client.close()
        await rt.close()
        await standin_runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--jobs", type=int, default=5000)
    args = parser.parse_args()
    if args.smoke:
        asyncio.run(run(300, (20, 100), athletes=5))
    else:
        asyncio.run(run(args.jobs, (100, 1000)))


if __name__ == "__main__":
    main()
