"""Bulk Connect links from Slack: time against the rate-limit-bound ideal (issue 13).

1,000 users with `revoked`, half of them workspace members, and the bot's courier (bot/bulk_send.py)
running the run against the local Slack (tests/bot/slack_standin.py), which here enforces a
per-method limit per minute and answers 429 with Retry-After beyond it. Slack's real limits
(users.lookupByEmail about 50 a minute) would make the run take 20 minutes, so both sides run on a
compressed scale: SCALE times Slack's rate, in the service's settings and in the local Slack alike.

The ideal is what the limits alone allow: for each method, its calls divided by its rate; the run
cannot be faster than the slowest method. Prints the run's time, the ideal, their ratio and the
429s the local Slack had to answer.

    python bench/bulk_links.py               # 1,000 users at 60x Slack's rate (ideal 20 s)
    python bench/bulk_links.py --smoke       # 100 users (CI)
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiohttp import web  # noqa: E402
from sqlalchemy import insert  # noqa: E402

from bench._common import machine, peak_rss_mb  # noqa: E402
from bot.app import web_client  # noqa: E402
from bot.bulk_send import SlackCourier  # noqa: E402
from service.app.bootstrap import open_runtime  # noqa: E402
from service.core.clock import SystemClock  # noqa: E402
from service.core.settings import Settings  # noqa: E402
from service.db.migrate import upgrade_to_head  # noqa: E402
from service.db.models import StravaConnection, User  # noqa: E402
from service.desk.support_desk import SupportDesk  # noqa: E402
from tests.bot.slack_standin import SlackStandin  # noqa: E402

SLACK_PER_MIN = 50  # users.lookupByEmail and conversations.open (Tier 3); chat.postMessage likewise here
SCALE = 60


async def seed(rt, users: int, standin: SlackStandin) -> None:
    now = rt.clock.now()
    rows = [{"id": n + 1, "email": f"u{n}@bench.example", "email_normalized": f"u{n}@bench.example",
             "created_at": now} for n in range(users)]
    conns = [{"user_id": n + 1, "athlete_id": 8_000_000 + n, "status": "revoked", "status_changed_at": now,
              "refresh_failures": 0} for n in range(users)]
    async with rt.sessions() as session, session.begin():
        await session.execute(insert(User), rows)
        await session.execute(insert(StravaConnection), conns)
    standin.members.update({f"u{n}@bench.example": f"UB{n}" for n in range(0, users, 2)})


async def run(users: int) -> float:
    rate = SLACK_PER_MIN * SCALE
    standin = SlackStandin(enforce_per_min={"users.lookupByEmail": rate, "conversations.open": rate,
                                            "chat.postMessage": rate})
    runner = web.AppRunner(standin.app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    standin.base_url = f"http://127.0.0.1:{port}"
    folder = Path(tempfile.mkdtemp(prefix="fitglue-bench-bulk-"))
    settings = Settings.from_values(
        database_url=f"sqlite+aiosqlite:///{folder / 'bench.db'}", secret_key="bench-secret-key-0123456789",
        slack_bot_token="xoxb-bench", slack_signing_secret="s", slack_api_url=f"{standin.base_url}/api/",
        slack_lookup_per_min=rate, slack_post_per_min=rate)
    rt = await open_runtime(settings, SystemClock())
    try:
        await upgrade_to_head(rt.engine)
        await seed(rt, users, standin)
        courier = SlackCourier(rt, web_client(rt, token="xoxb-bench"))
        run_ = await SupportDesk(rt).bulk_links.start("revoked", None, "slack:UBENCH", agent_slack_id="UBENCH",
                                                    queue=False)
        started = time.perf_counter()
        await courier.run_bulk_links(run_.id)
        took = time.perf_counter() - started
        counts = {m: len(standin.called(m)) for m in ("users.lookupByEmail", "conversations.open",
                                                      "chat.postMessage")}
        ideal = max(n / (rate / 60) for n in counts.values())
        print(f"machine: {machine()}")
        print(f"{users:,} users ({users // 2:,} workspace members), Slack limits {rate}/min per method "
              f"({SCALE}x Slack's {SLACK_PER_MIN}/min); calls {counts}; 429s answered: {standin.rate_limited}")
        csv_rows = sum(len(content.splitlines()) - 1 for content in standin.uploads.values())
        print(f"run: {took:.2f} s; rate-limit-bound ideal {ideal:.2f} s; ratio {took / ideal:.3f}; "
              f"CSV rows {csv_rows}")
        print(f"at Slack's real rate this run would take about {took * SCALE / 60:.1f} minutes")
        print(f"peak RSS: {peak_rss_mb():.0f} MB")
        return took / ideal
    finally:
        await rt.close()
        await runner.cleanup()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="100 users")
    parser.add_argument("--users", type=int)
    args = parser.parse_args()
    users = args.users or (100 if args.smoke else 1_000)
    asyncio.run(run(users))
    return 0


if __name__ == "__main__":
    sys.exit(main())
