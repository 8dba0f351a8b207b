"""Access-token endpoint: an already valid token at 200 requests/s, beside `/healthz` in the same run.

The real service (as `fitglue serve` runs it: HTTP, and the background loops in their own thread)
in its own process on a fresh SQLite file (or --database-url), holding 1,000 connected users whose tokens stay
valid for hours, so no call refreshes and Strava is never asked (its URLs point nowhere). One
open-loop generator sends `POST /internal/api/strava/token` for random users (by e-mail or athlete
id, min_valid_s 600) at a fixed rate and, interleaved at the same rate, `GET /healthz` to the same
server; latency is measured from each request's scheduled send time, so a server that falls behind
cannot hide it. Prints both p50/p99 and their ratio, and checks every token call was audited.

    python bench/token_endpoint.py                  # 200 requests/s of each for 20 s
    python bench/token_endpoint.py --rate 400 --seconds 10
    python bench/token_endpoint.py --smoke          # 100/s for 2 s, for CI (targets not enforced)

Target: token p99 <= 3 x healthz p99 at 200 requests/s, every answer 200, nothing refreshed.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import random
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._common import machine, percentile, seed_connections, wait_ready  # noqa: E402
from bench._servers import bench_settings, stop_child  # noqa: E402

KEY = "bench-token-api-key-0123456789"
USERS = 1000
FIRST_ATHLETE = 5_000_000


async def serve(port: int, database_url: str) -> None:
    """The service as `fitglue serve` runs it: HTTP on this loop, the background loops in their thread."""
    from datetime import timedelta

    from aiohttp import web

    from service.app.bootstrap import open_runtime
    from service.app.factory import build_app
    from service.app.gc_tuning import freeze_startup_heap
    from service.app.roles import start_in_process_background
    from service.db.migrate import upgrade_to_head

    rt = await open_runtime(bench_settings(database_url, port, token_api_key=KEY))
    await upgrade_to_head(rt.engine)
    await seed_connections(rt.sessions, rt.cipher, USERS, rt.clock.now(), timedelta(hours=5),
                           first_athlete=FIRST_ATHLETE)
    app = build_app(rt, background=False)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await start_in_process_background(app, rt)
    freeze_startup_heap()  # as `fitglue serve` does once it listens
    await asyncio.Event().wait()


@dataclasses.dataclass
class Series:
    name: str
    sent: int = 0
    ok: int = 0
    errors: int = 0
    refreshed: int = 0
    latencies_ms: list[float] = dataclasses.field(default_factory=list)

    def line(self) -> str:
        return (f"{self.name:<8} p50 {percentile(self.latencies_ms, 50):6.2f} ms   "
                f"p99 {percentile(self.latencies_ms, 99):6.2f} ms   max {max(self.latencies_ms or [0]):7.2f} ms   "
                f"200s {self.ok}/{self.sent}   errors {self.errors}")


def token_body(rng: random.Random) -> dict:
    n = rng.randrange(USERS)
    who: str | int = f"athlete{n}@bench.example" if rng.random() < 0.75 else FIRST_ATHLETE + n
    return {"who": who, "min_valid_s": 600}


async def drive(url: str, rate: float, seconds: float, warmup: int = 100) -> tuple[Series, Series]:
    rng = random.Random(7)
    token, health = Series("token"), Series("healthz")
    headers = {"Authorization": f"Bearer {KEY}"}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                     timeout=aiohttp.ClientTimeout(total=10)) as http:
        for _ in range(warmup):  # connections, first queries, caches; not measured
            async with http.post(f"{url}/internal/api/strava/token", json=token_body(rng), headers=headers) as r:
                await r.read()
        loop = asyncio.get_running_loop()
        start = loop.time() + 0.05

        async def one(series: Series, due: float, method: str, path: str, **kwargs: object) -> None:
            series.sent += 1
            try:
                async with http.request(method, f"{url}{path}", **kwargs) as response:  # type: ignore[arg-type]
                    body = await response.json()
                    if response.status == 200:
                        series.ok += 1
                        series.refreshed += bool(body.get("refreshed"))
                    else:
                        series.errors += 1
            except (aiohttp.ClientError, TimeoutError):
                series.errors += 1
                return
            series.latencies_ms.append((loop.time() - due) * 1000)

        tasks = []
        total = int(rate * seconds)
        for n in range(total):
            for series, offset in ((token, 0.0), (health, 0.5)):  # interleaved, half a period apart
                due = start + (n + offset) / rate
                delay = due - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                if series is token:
                    tasks.append(asyncio.ensure_future(one(token, due, "POST", "/internal/api/strava/token",
                                                           json=token_body(rng), headers=headers)))
                else:
                    tasks.append(asyncio.ensure_future(one(health, due, "GET", "/healthz")))
        await asyncio.gather(*tasks)
    return token, health


def start_server(database_url: str, port: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, __file__, "--serve", database_url, "--port", str(port)], cwd=ROOT)


def audited(db_path: Path) -> int:
    with sqlite3.connect(db_path) as db:
        return db.execute("SELECT count(*) FROM audit_log WHERE actor = 'token-api'").fetchone()[0]


async def main(args: argparse.Namespace) -> int:
    from tests.e2e.procs import free_port

    db_path = Path(tempfile.mkdtemp(prefix="fitglue-token-")) / "bench.db"
    database_url = args.database_url or f"sqlite+aiosqlite:///{db_path}"
    port = free_port()
    proc = start_server(database_url, port)
    try:
        url = f"http://127.0.0.1:{port}"
        await wait_ready(url, proc)
        token, health = await drive(url, args.rate, args.seconds)
        await asyncio.sleep(0.5)  # the last audit batch
        calls_audited = audited(db_path) if args.database_url is None else None
    finally:
        stop_child(proc)
    print(f"token endpoint: {args.rate:g} requests/s of each for {args.seconds:g} s; machine: {machine()}")
    print(token.line())
    print(health.line())
    ratio = percentile(token.latencies_ms, 99) / max(percentile(health.latencies_ms, 99), 1e-9)
    print(f"p99 ratio (token / healthz): {ratio:.2f}   refreshed: {token.refreshed}")
    failures = []
    if calls_audited is not None:
        print(f"audit entries: {calls_audited} for {token.sent} calls (+ the warm-up)")
        if calls_audited < token.sent:
            failures.append("calls missing from the audit log")
    if token.errors or health.errors:
        failures.append(f"{token.errors + health.errors} requests failed")
    if token.refreshed:
        failures.append(f"{token.refreshed} calls refreshed a token that was valid")
    if not args.smoke and ratio > 3:
        failures.append(f"token p99 is {ratio:.2f} x healthz p99 (target <= 3)")
    for failure in failures:
        print(f"MISSED: {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=200.0, help="requests per second of each kind (default 200)")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--smoke", action="store_true", help="100/s for 2 s, targets not enforced")
    parser.add_argument("--database-url", help="run the service on this database instead of a fresh SQLite file")
    parser.add_argument("--serve", metavar="DATABASE_URL", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    cli = parser.parse_args()
    if cli.serve:
        asyncio.run(serve(cli.port, cli.serve))
    else:
        if cli.smoke:
            cli.rate, cli.seconds = 100.0, 2.0
        sys.exit(asyncio.run(main(cli)))
