"""Outbound events: throughput and lag from a committed state change to the receiver's 2xx.

The real service (`build_app` with its background work: queue worker, scheduler and the delivery of
outbound events) runs in its own process on a fresh SQLite file (or --database-url). This process
commits state changes at a fixed open-loop rate through the service's own code path (an activity
stored as Strava answered it, which writes its `strava.activity.created` event in the same
transaction), for athletes spread over --athletes connected users, and runs the receiver, which
verifies every signature with `standardwebhooks` and answers 200. Lag is measured per event from
the moment its transaction committed to the moment the receiver answered (one clock: both ends are
in this process).

Baseline: the same receiver, the same rate, the same signed bodies POSTed directly by this process
(no outbox, no worker): what a synchronous hand-off would cost.

    python bench/outbound_events.py                  # 100 events/s for 60 s
    python bench/outbound_events.py --rate 200 --seconds 30
    python bench/outbound_events.py --smoke          # 50 events/s for 3 s, for CI

Targets: p99 <= 1 s, every committed event delivered, none twice, the worker keeps up (nothing
left pending within 2 s of the last commit).
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
from aiohttp import web

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._common import machine, percentile, wait_ready  # noqa: E402

SECRET_KEY = "bench-secret-key-0123456789"
EVENTS_SECRET = "whsec_YmVuY2gtb3V0Ym91bmQtZXZlbnRzLXNlY3JldC0wMTIz"
FIRST_ATHLETE = 5_000_000


def settings_for(database_url: str, events_url: str, port: int):  # noqa: ANN201
    from service.core.settings import Settings

    return Settings.from_values(
        database_url=database_url, secret_key=SECRET_KEY, strava_client_id="1001", strava_client_secret="bench",
        strava_webhook_verify_token="bench", strava_api_url="http://127.0.0.1:9/api/v3",
        strava_oauth_url="http://127.0.0.1:9/oauth", public_url=f"http://127.0.0.1:{port}",
        events_url=events_url, events_secret=EVENTS_SECRET,
        refresh_interval_s=86400, retention_interval_s=86400)  # nothing else due during the run


async def serve_service(port: int, database_url: str, events_url: str) -> None:
    """The child: the service with its background work, as `fitglue serve` runs it."""
    from service.app.bootstrap import open_runtime
    from service.app.factory import build_app
    from service.app.gc_tuning import freeze_startup_heap

    rt = await open_runtime(settings_for(database_url, events_url, port))
    runner = web.AppRunner(build_app(rt, background=True), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    freeze_startup_heap()
    await asyncio.Event().wait()


def start_child(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, __file__, *args], cwd=ROOT)


def activity(n: int, athletes: int) -> dict:
    return {"id": 70_000_000 + n, "athlete": {"id": FIRST_ATHLETE + n % athletes}, "name": f"Bench run {n}",
            "sport_type": "Run", "start_date": "2026-11-27T06:00:00Z", "distance": 5000.0, "moving_time": 1500}


async def open_loop(rate: float, seconds: float, one) -> float:  # noqa: ANN001
    """Start `one(n)` at n / rate seconds, whatever the previous ones are doing; the elapsed time."""
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.05
    tasks = []
    for n in range(int(rate * seconds)):
        delay = start + n / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.ensure_future(one(n)))
    await asyncio.gather(*tasks)
    return loop.time() - start


async def run_outbox(args: argparse.Namespace, receiver, events_url: str) -> dict:  # noqa: ANN001
    """Commit state changes here; the service's worker delivers them to `receiver`."""
    from bench._common import seed_connections
    from service.app.bootstrap import open_runtime, upgrade_to_head
    from service.background.webhooks.activity_store import upsert_summaries
    from tests.e2e.procs import free_port

    folder = Path(tempfile.mkdtemp(prefix="fitglue-outbound-"))
    database_url = args.database_url or f"sqlite+aiosqlite:///{folder / 'bench.db'}"
    port = free_port()
    rt = await open_runtime(settings_for(database_url, events_url, port))
    await upgrade_to_head(rt.engine)
    await seed_connections(rt.sessions, rt.cipher, args.athletes, datetime.now(UTC), timedelta(hours=6),
                           first_athlete=FIRST_ATHLETE)
    proc = start_child("--serve-service", database_url, "--events-url", events_url, "--port", str(port))
    try:
        await wait_ready(f"http://127.0.0.1:{port}", proc)
        committed: dict[int, float] = {}

        async def one(n: int) -> None:
            item = activity(n, args.athletes)
            await upsert_summaries(rt, [item])
            committed[item["id"]] = time.monotonic()

        elapsed = await open_loop(args.rate, args.seconds, one)
        last_commit = time.monotonic()
        total = len(committed)
        drained_at = None
        deadline = last_commit + 60
        while time.monotonic() < deadline:
            if len({e.data["activity"]["id"] for e in receiver.accepted()}) >= total:
                drained_at = time.monotonic()
                break
            await asyncio.sleep(0.05)
    finally:
        proc.terminate()
        proc.wait(15)
        await rt.close()
    arrivals: dict[int, float] = {}
    duplicates = 0
    for event in receiver.accepted():
        activity_id = event.data["activity"]["id"]
        if activity_id in arrivals:
            duplicates += 1
        else:
            arrivals[activity_id] = event.arrived
    lags = [(arrivals[i] - t) * 1000 for i, t in committed.items() if i in arrivals]
    return {"sent": total, "delivered": len(arrivals), "duplicates": duplicates, "elapsed": elapsed, "lags": lags,
            "bad_signatures": sum(1 for e in receiver.received if not e.verified),
            "drain_s": (drained_at - last_commit) if drained_at is not None else None}


async def run_direct(args: argparse.Namespace, receiver, events_url: str) -> dict:  # noqa: ANN001
    """The baseline: the same signed bodies POSTed straight to the receiver."""
    from standardwebhooks import Webhook

    from service.background.outbound import signed_headers
    from service.outbox.writing import activity_summary, event_body, new_webhook_id

    signer = Webhook(EVENTS_SECRET)
    lags: list[float] = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100)) as http:

        async def one(n: int) -> None:
            body = event_body("strava.activity.created", datetime.now(UTC),
                              {"activity": activity_summary(activity(n, args.athletes))})
            webhook_id = new_webhook_id()
            started = time.monotonic()
            async with http.post(events_url, data=body.encode(), headers=signed_headers(signer, webhook_id, body)) as r:
                await r.read()
            lags.append((time.monotonic() - started) * 1000)

        elapsed = await open_loop(args.rate, args.seconds, one)
    return {"sent": len(lags), "delivered": len(lags), "duplicates": 0, "elapsed": elapsed, "lags": lags,
            "bad_signatures": sum(1 for e in receiver.received if not e.verified), "drain_s": 0.0}


def line(name: str, result: dict) -> str:
    lags = result["lags"]
    return (f"{name:<8} {result['delivered'] / result['elapsed']:7.1f} events/s   p50 {percentile(lags, 50):8.1f} ms   "
            f"p99 {percentile(lags, 99):8.1f} ms   max {max(lags, default=0):8.1f} ms   "
            f"delivered {result['delivered']}/{result['sent']}   duplicates {result['duplicates']}")


async def main(args: argparse.Namespace) -> int:
    from standin.event_receiver import start_event_receiver

    results = {}
    for name, run in (("direct", run_direct), ("outbox", run_outbox)):
        receiver, runner, url = await start_event_receiver(EVENTS_SECRET)
        try:
            results[name] = await run(args, receiver, url)
        finally:
            await runner.cleanup()
    print(f"outbound events: {args.rate:g} state changes/s for {args.seconds:g} s over {args.athletes} athletes; "
          f"machine: {machine()}")
    for name, result in results.items():
        print(line(name, result))
    outbox = results["outbox"]
    drain = outbox["drain_s"]
    print(f"worker drained the outbox {drain:.2f} s after the last commit" if drain is not None
          else "worker did NOT drain the outbox within 60 s")
    failures = []
    if outbox["delivered"] != outbox["sent"]:
        failures.append(f"{outbox['sent'] - outbox['delivered']} committed events never arrived")
    if outbox["duplicates"] or outbox["bad_signatures"]:
        failures.append(f"{outbox['duplicates']} duplicates, {outbox['bad_signatures']} bad signatures")
    if not args.smoke:
        p99 = percentile(outbox["lags"], 99)
        if p99 > 1000:
            failures.append(f"p99 {p99:.0f} ms > 1000 ms")
        if drain is None or drain > 2:
            failures.append("the worker did not keep up (outbox not drained within 2 s of the last commit)")
    for failure in failures:
        print(f"MISSED: {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=100.0, help="state changes per second (default 100)")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--athletes", type=int, default=500, help="connected athletes the changes are spread over")
    parser.add_argument("--smoke", action="store_true", help="50 events/s for 3 s, only correctness enforced")
    parser.add_argument("--database-url", help="an empty database instead of a fresh SQLite file")
    parser.add_argument("--serve-service", metavar="DATABASE_URL", help=argparse.SUPPRESS)
    parser.add_argument("--events-url", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    cli = parser.parse_args()
    if cli.serve_service:
        asyncio.run(serve_service(cli.port, cli.serve_service, cli.events_url))
    else:
        if cli.smoke:
            cli.rate, cli.seconds = 50.0, 3.0
        sys.exit(asyncio.run(main(cli)))
