"""``python -m standin [--host H] [--port P]``: run the stand-in on its own."""

from __future__ import annotations

import argparse
import asyncio
import contextlib

from standin.app import start_standin
from standin.config import StandinConfig


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m standin", description="Run the local Strava stand-in."
    )
    p.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8099, help="listen port (default 8099; 0 picks a free one)")
    p.add_argument("--client-id", default=StandinConfig.client_id)
    p.add_argument("--client-secret", default=StandinConfig.client_secret)
    p.add_argument(
        "--athlete-capacity", type=int, default=None, help="connected athletes allowed (default: no limit)"
    )
    p.add_argument("--latency", type=float, default=0.0, help="seconds added to every response")
    return p


async def _serve(args: argparse.Namespace) -> None:
    config = StandinConfig(
        client_id=args.client_id,
        client_secret=args.client_secret,
        athlete_capacity=args.athlete_capacity,
        latency_s=args.latency,
    )
    _standin, runner, base = await start_standin(args.host, args.port, config=config)
    print("Strava sandbox — not the real Strava", flush=True)
    print(f"  pages:         {base}/", flush=True)
    print(f"  OAuth base:    {base}/oauth   (STRAVA_OAUTH_URL)", flush=True)
    print(f"  API base:      {base}/api/v3  (STRAVA_API_URL)", flush=True)
    print(f"  client id:     {config.client_id}", flush=True)
    print(f"  client secret: {config.client_secret}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args))


if __name__ == "__main__":
    main()
