"""The Strava stand-in in its own process, so a benchmark measures our CPU, not the stand-in's.

Adds bench-only routes: POST /bench/mint {count, first_athlete, seconds_left} connects that many
athletes and returns their tokens, as if each had gone through the Connect flow; POST
/bench/activities {athletes, per_athlete} adds activities; GET /bench/calls counts calls.
Prints its base URL on the first line of stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import timedelta
from pathlib import Path

from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import mint_grant  # noqa: E402
from service.core.clock import SystemClock, to_epoch  # noqa: E402
from standin import STANDIN_KEY, StandinConfig, StravaStandin, build_standin_app  # noqa: E402


async def mint(request: web.Request) -> web.Response:
    standin = request.app[STANDIN_KEY]
    body = await request.json()
    issued_at = standin.clock.now() + timedelta(seconds=body["seconds_left"]) - timedelta(hours=6)
    grants = []
    for athlete in range(body["first_athlete"], body["first_athlete"] + body["count"]):
        access, refresh, expires = mint_grant(standin, athlete, issued_at)
        grants.append([athlete, access, refresh, to_epoch(expires)])
    return web.json_response(grants)


async def activities(request: web.Request) -> web.Response:
    """POST /bench/activities {athletes, per_athlete}: that many activities for each athlete; [[athlete, id]]."""
    standin = request.app[STANDIN_KEY]
    body = await request.json()
    made = [[athlete, standin.add_activity(athlete, name=f"Bench {n}")]
            for n in range(body["per_athlete"]) for athlete in body["athletes"]]
    return web.json_response(made)


async def calls(request: web.Request) -> web.Response:
    standin = request.app[STANDIN_KEY]
    return web.json_response({"token": standin.count_calls("POST", "/oauth/token"),
                              "api": standin.count_calls("GET", "/api/v3")})


async def serve(latency: float, unlimited: bool) -> None:
    config = StandinConfig(latency_s=latency)
    if unlimited:  # a budget no run reaches (and whose limit x 100 still fits PostgreSQL's integer)
        config = StandinConfig(latency_s=latency, read_limits=(1_000_000, 10_000_000),
                               overall_limits=(1_000_000, 10_000_000))
    standin = StravaStandin(config, SystemClock())
    app = build_standin_app(standin)
    app.router.add_post("/bench/mint", mint)
    app.router.add_post("/bench/activities", activities)
    app.router.add_get("/bench/calls", calls)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    standin.base_url = f"http://127.0.0.1:{port}"
    print(standin.base_url, flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--unlimited", action="store_true", help="rate limits no run reaches")
    cli = parser.parse_args()
    asyncio.run(serve(cli.latency, cli.unlimited))
