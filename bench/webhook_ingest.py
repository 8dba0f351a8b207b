"""Webhook ingest: the real `/webhooks/strava` against a bare aiohttp handler that only answers 200.

Both run as their own processes on loopback ports and get the very same open-loop load: distinct
events sent at a fixed rate whatever the answers (latency is measured from each event's scheduled
send time, so a server that falls behind cannot hide it). The real service runs with its worker
(it settles each event: the athletes are unknown, so no Strava call is made) on SQLite (or
--database-url). Prints events/s and p50/p99 latency of both, their ratio, and events stored vs
200s returned (must be equal: nothing lost).

    python bench/webhook_ingest.py                      # 500 events/s for 10 s
    python bench/webhook_ingest.py --rate 1000 --seconds 20
    python bench/webhook_ingest.py --smoke              # 2 s, for CI
    python bench/webhook_ingest.py --no-worker          # ingest alone, without the queue worker

Targets on SQLite: ratio >= 0.5 and p99 <= 25 ms at 500 events/s, zero lost.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

import aiohttp
from aiohttp import web

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._common import machine, percentile, wait_ready  # noqa: E402

SUBSCRIPTION_ID = 131300
VERIFY = "bench-verify"


# ---- the two servers (child processes) -------------------------------------------------------

async def serve_bare(port: int) -> None:
    async def ok(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_post("/webhooks/strava", ok)
    app.router.add_get("/readyz", ok)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await asyncio.Event().wait()


async def serve_service(port: int, database_url: str, worker: bool = True) -> None:
    from service.app.bootstrap import open_runtime
    from service.app.factory import build_app
    from service.app.gc_tuning import freeze_startup_heap
    from service.core.settings import Settings
    from service.db.migrate import upgrade_to_head
    from service.subscription.state import remember_subscription

    settings = Settings.from_values(
        database_url=database_url, secret_key="bench-secret-key-0123456789",
        strava_client_id="1001", strava_client_secret="bench", strava_webhook_verify_token=VERIFY,
        strava_api_url="http://127.0.0.1:9/api/v3", strava_oauth_url="http://127.0.0.1:9/oauth",
        public_url=f"http://127.0.0.1:{port}")
    rt = await open_runtime(settings)
    await upgrade_to_head(rt.engine)
    async with rt.sessions() as session, session.begin():
        await remember_subscription(session, SUBSCRIPTION_ID, rt.clock.now())
    runner = web.AppRunner(build_app(rt, background=worker), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    freeze_startup_heap()  # as `fitglue serve` does once it listens
    await asyncio.Event().wait()


def start_child(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, __file__, *args], cwd=ROOT)


# ---- the load generator -----------------------------------------------------------------------

@dataclasses.dataclass
class Result:
    name: str
    sent: int
    ok: int
    errors: int
    elapsed: float
    latencies_ms: list[float]

    @property
    def rate(self) -> float:
        return self.ok / self.elapsed if self.elapsed else 0.0

    def line(self) -> str:
        return (f"{self.name:<8} {self.rate:8.1f} events/s   p50 {percentile(self.latencies_ms, 50):6.2f} ms   "
                f"p99 {percentile(self.latencies_ms, 99):6.2f} ms   200s {self.ok}/{self.sent}   errors {self.errors}")


def event_body(n: int, run_tag: int) -> bytes:
    return json.dumps({"aspect_type": "create", "event_time": 1_800_000_000 + run_tag, "object_id": 10_000_000 + n,
                       "object_type": "activity", "owner_id": 9_000_000 + n % 1000,
                       "subscription_id": SUBSCRIPTION_ID, "updates": {}}).encode()


async def drive(name: str, url: str, rate: float, seconds: float, warmup: int = 50) -> Result:
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=10)) as http:
        # Warm-up (connections, first queries); not measured, distinct events too.
        await asyncio.gather(*(http.post(f"{url}/webhooks/strava", data=event_body(n, 1),
                                         headers={"Content-Type": "application/json"}) for n in range(warmup)))
        total = int(rate * seconds)
        latencies: list[float] = []
        ok = errors = 0
        loop = asyncio.get_running_loop()
        start = loop.time() + 0.05

        async def one(n: int, due: float) -> None:
            nonlocal ok, errors
            try:
                async with http.post(f"{url}/webhooks/strava", data=event_body(n, 2),
                                     headers={"Content-Type": "application/json"}) as response:
                    await response.read()
                    if response.status == 200:
                        ok += 1
                    else:
                        errors += 1
            except (aiohttp.ClientError, TimeoutError):
                errors += 1
                return
            latencies.append((loop.time() - due) * 1000)

        tasks = []
        for n in range(total):
            due = start + n / rate
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.ensure_future(one(n, due)))
        await asyncio.gather(*tasks)
        elapsed = loop.time() - start
    return Result(name, total, ok, errors, elapsed, latencies)


def stored_events(db_path: Path) -> int:
    with sqlite3.connect(db_path) as db:
        return db.execute("SELECT count(*) FROM webhook_events WHERE event_time = ?", (1_800_000_002,)).fetchone()[0]


async def main(args: argparse.Namespace) -> int:
    from tests.e2e.procs import free_port

    folder = Path(tempfile.mkdtemp(prefix="fitglue-ingest-"))
    db_path = folder / "bench.db"
    database_url = args.database_url or f"sqlite+aiosqlite:///{db_path}"
    results = []
    service_args = ("--serve-service", database_url, *(("--no-worker",) if args.no_worker else ()))
    for name, extra in (("bare", ("--serve-bare",)), ("service", service_args)):
        port = free_port()
        proc = start_child(*extra, "--port", str(port))
        try:
            url = f"http://127.0.0.1:{port}"
            await wait_ready(url, proc)
            results.append(await drive(name, url, args.rate, args.seconds))
        finally:
            proc.terminate()
            proc.wait(15)
    bare, service = results
    print(f"webhook ingest: {args.rate:g} events/s offered for {args.seconds:g} s; machine: {machine()}")
    print(bare.line())
    print(service.line())
    ratio = service.rate / bare.rate if bare.rate else 0.0
    print(f"ratio (service / bare events/s): {ratio:.2f}")
    failures = []
    if args.database_url is None:
        stored = stored_events(db_path)
        print(f"stored events: {stored}, 200s returned: {service.ok}, lost: {service.ok - stored}")
        if stored != service.ok:
            failures.append("stored events differ from 200s returned")
    p99 = percentile(service.latencies_ms, 99)
    if not args.smoke:
        if ratio < 0.5:
            failures.append(f"ratio {ratio:.2f} < 0.5")
        if p99 > 25:
            failures.append(f"p99 {p99:.1f} ms > 25 ms")
    if service.errors:
        failures.append(f"{service.errors} requests failed")
    for failure in failures:
        print(f"MISSED: {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=500.0, help="events per second offered (default 500)")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--smoke", action="store_true", help="2 s at 200 events/s, no targets enforced")
    parser.add_argument("--database-url", help="run the service on this database instead of a fresh SQLite file")
    parser.add_argument("--no-worker", action="store_true", help="the service without its queue worker (ingest alone)")
    parser.add_argument("--serve-bare", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--serve-service", metavar="DATABASE_URL", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    cli = parser.parse_args()
    if cli.serve_bare:
        asyncio.run(serve_bare(cli.port))
    elif cli.serve_service:
        asyncio.run(serve_service(cli.port, cli.serve_service, worker=not cli.no_worker))
    else:
        if cli.smoke:
            cli.rate, cli.seconds = 200.0, 2.0
        sys.exit(asyncio.run(main(cli)))
