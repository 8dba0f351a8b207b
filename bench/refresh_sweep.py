"""Refresh sweep throughput: N due tokens against the Strava stand-in answering after 50 ms.

The baseline is the ideal for the configured concurrency, ceil(N / C) x latency: what a sweep
would take if our own work (leases, decryption, database writes) cost nothing. Prints
ideal/measured (target >= 0.8) and checks every token was refreshed exactly once.

    python bench/refresh_sweep.py            # 10,000 tokens, concurrency 8
    python bench/refresh_sweep.py --smoke    # 200 tokens, for CI
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import StandinProcess, machine, peak_rss_mb, seed_connections  # noqa: E402
from service.app.bootstrap import open_runtime  # noqa: E402
from service.connections.refresh import sweep_due  # noqa: E402
from service.core.clock import SystemClock  # noqa: E402
from service.core.settings import Settings  # noqa: E402
from service.db.migrate import upgrade_to_head  # noqa: E402
from standin import StandinConfig  # noqa: E402


async def run(count: int, concurrency: int, latency: float, database_url: str | None) -> float:
    clock = SystemClock()
    standin = StandinProcess(latency)
    folder = Path(tempfile.mkdtemp(prefix="fitglue-bench-"))
    settings = Settings.from_values(
        database_url=database_url or f"sqlite+aiosqlite:///{folder / 'bench.db'}",
        secret_key="bench-secret-key-0123456789", strava_client_id=StandinConfig.client_id,
        strava_client_secret=StandinConfig.client_secret, strava_oauth_url=f"{standin.base_url}/oauth",
        strava_api_url=f"{standin.base_url}/api/v3", strava_webhook_verify_token="v",
        refresh_concurrency=concurrency)
    rt = await open_runtime(settings, clock)
    try:
        await upgrade_to_head(rt.engine)
        # 30 minutes left: due within the default one-hour margin, and Strava issues new tokens.
        grants = await standin.mint(rt.http, count, seconds_left=1800)
        await seed_connections(rt.sessions, rt.cipher, count, clock.now(), timedelta(minutes=30), grants)
        started = time.perf_counter()
        results = await sweep_due(rt)
        elapsed = time.perf_counter() - started
        refreshed = sum(1 for r in results if r.refreshed)
        failed = sum(1 for r in results if r.failed)
        calls = (await standin.calls(rt.http))["token"]
        ideal = math.ceil(count / concurrency) * latency
        ratio = ideal / elapsed
        print(f"machine: {machine()}")
        print(f"refresh sweep: {count} due tokens, concurrency {concurrency}, stand-in latency {latency * 1000:.0f} ms "
              "(stand-in in its own process)")
        print(f"  measured {elapsed:.2f} s ({count / elapsed:.0f} tokens/s); ideal {ideal:.2f} s")
        print(f"  ratio ideal/measured = {ratio:.2f} (target >= 0.80)")
        print(f"  refreshed {refreshed}, failed {failed}, refresh calls to Strava {calls}")
        print(f"  peak RSS {peak_rss_mb():.0f} MB")
        if refreshed != count or calls != count:
            raise SystemExit(f"expected {count} refreshes with one call each, got {refreshed} / {calls}")
        return ratio
    finally:
        await rt.close()
        standin.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="a few hundred tokens, for CI")
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--database-url", help="e.g. postgresql+asyncpg://postgres@127.0.0.1:5432/bench")
    args = parser.parse_args()
    count = 200 if args.smoke else args.count
    asyncio.run(run(count, args.concurrency, args.latency, args.database_url))


if __name__ == "__main__":
    main()
