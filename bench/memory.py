"""Peak memory of the running service with 100,000 connections.

Two child processes run the same workload on the real app (HTTP server, scheduler, queue worker):
a refresh sweep of 2,000 due tokens against the Strava stand-in, 1,000 webhook events through the
endpoint and the worker, 300 diagnoses, the App Home summary and the rate-limit report. The
baseline child has only the 2,000 due connections; the measured one has 100,000 in all. Prints
both peak RSS figures and their ratio; target: at most 150 MB with 100,000 connections.

    python bench/memory.py            # 100,000 connections
    python bench/memory.py --smoke    # 5,000 connections, 200 due, for CI
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import machine, mint_grant, peak_rss_mb  # noqa: E402

TARGET_MB = 150


async def child(total: int, due: int) -> dict:
    import aiohttp
    from aiohttp import web
    from sqlalchemy import func, select

    from bench._common import seed_connections
    from service.app.bootstrap import open_runtime
    from service.app.factory import build_app
    from service.core.clock import SystemClock, to_epoch
    from service.core.settings import Settings
    from service.db.migrate import upgrade_to_head
    from service.db.models import StravaConnection
    from service.desk.support_desk import SupportDesk
    from standin import StandinConfig, start_standin

    clock = SystemClock()
    standin, standin_runner, base = await start_standin("127.0.0.1", 0, config=StandinConfig(), clock=clock)
    folder = Path(tempfile.mkdtemp(prefix="fitglue-mem-"))
    settings = Settings.from_values(
        database_url=f"sqlite+aiosqlite:///{folder / 'mem.db'}", secret_key="memory-bench-key-0123456",
        strava_client_id=standin.config.client_id, strava_client_secret=standin.config.client_secret,
        strava_oauth_url=f"{base}/oauth", strava_api_url=f"{base}/api/v3", strava_webhook_verify_token="v",
        refresh_interval_s=1)
    rt = await open_runtime(settings, clock)
    await upgrade_to_head(rt.engine)
    now = clock.now()
    # the due ones first (ids 1..due), with tokens the stand-in knows; the rest far from expiry
    issued = now + timedelta(minutes=30) - timedelta(hours=6)
    grants = [[a, *mint_grant(standin, a, issued)[:2], to_epoch(now)] for a in range(5_000_000, 5_000_000 + due)]
    await seed_connections(rt.sessions, rt.cipher, due, now, timedelta(minutes=30), grants)
    if total > due:
        # the rest far from expiry: never due during the run
        await seed_connections(rt.sessions, rt.cipher, total - due, now, timedelta(hours=5), offset=due)
    baseline_loaded = peak_rss_mb()

    app = build_app(rt)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    started = time.monotonic()
    async with aiohttp.ClientSession() as http:
        while True:  # the scheduler's sweep refreshes every due token
            async with rt.sessions() as session:
                done = await session.scalar(select(func.count(StravaConnection.id)).where(
                    StravaConnection.last_refresh_at.is_not(None)))
            if done >= due or time.monotonic() - started > 600:
                break
            await asyncio.sleep(0.5)
        for n in range(1000):
            event = {"aspect_type": "create", "event_time": 1_700_000_000 + n, "object_id": 10_000 + n,
                     "object_type": "activity", "owner_id": 5_000_000 + n % max(due, 1), "subscription_id": 1,
                     "updates": {}}
            async with http.post(f"http://127.0.0.1:{port}/webhooks/strava", json=event) as response:
                await response.read()
        desk = SupportDesk(rt)
        for n in range(300):
            await desk.diagnose(f"athlete{(n * 331) % total}@bench.example")
        await desk.home.summary()
        await desk.webhooks.rate_limit_report()
    await runner.cleanup()
    await rt.close()
    await standin_runner.cleanup()
    return {"connections": total, "due": due, "refreshed": done, "peak_rss_mb": round(peak_rss_mb(), 1),
            "rss_after_seeding_mb": round(baseline_loaded, 1)}


def run_child(total: int, due: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", str(total), str(due)], capture_output=True,
                         text=True, timeout=1800)
    if out.returncode != 0:
        raise SystemExit(f"child failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--connections", type=int, default=100_000)
    parser.add_argument("--due", type=int, default=2_000)
    parser.add_argument("--child", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(child(*args.child))))
        return
    total, due = (5_000, 200) if args.smoke else (args.connections, args.due)
    baseline = run_child(due, due)
    measured = run_child(total, due)
    print(f"machine: {machine()}")
    print(f"workload: sweep of {due} due tokens, 1,000 webhook events, 300 diagnoses, home summary, rate-limit report")
    print(f"  baseline ({baseline['connections']} connections): peak RSS {baseline['peak_rss_mb']} MB")
    print(f"  measured ({measured['connections']} connections): peak RSS {measured['peak_rss_mb']} MB "
          f"(after seeding {measured['rss_after_seeding_mb']} MB)")
    print(f"  ratio measured/baseline = {measured['peak_rss_mb'] / baseline['peak_rss_mb']:.2f}; "
          f"target <= {TARGET_MB} MB: {'met' if measured['peak_rss_mb'] <= TARGET_MB else 'MISSED'}")
    if measured["refreshed"] < due:
        raise SystemExit(f"only {measured['refreshed']} of {due} due tokens were refreshed")


if __name__ == "__main__":
    main()
