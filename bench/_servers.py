"""Servers the HTTP benchmarks run as child processes, and the databases they run on.

`python bench/_servers.py bare --port P` is a bare aiohttp handler that only answers 200 (the
baseline). `bare-commit --port P --database-url URL` is the bare handler plus one durable commit of
the body per request (no batching, no checks): the database's own floor under the same load. `service --port P --database-url URL --role all|web` is FitGlue as `fitglue serve` runs
it (role `all`: the background loops in their own thread; `web`: intake only), with the
subscription id the events name already known. `worker --database-url URL` is `fitglue worker`'s
background loops. `scratch_database` gives a fresh SQLite file or a fresh PostgreSQL database.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from aiohttp import web

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


SUBSCRIPTION_ID = 131300
VERIFY = "bench-verify"
PG_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/test"


def bench_settings(database_url: str, port: int = 0, **extra: object):
    from service.core.settings import Settings

    values: dict = {"database_url": database_url, "secret_key": "bench-secret-key-0123456789",
                    "strava_client_id": "1001", "strava_client_secret": "bench",
                    "strava_webhook_verify_token": VERIFY, "strava_api_url": "http://127.0.0.1:9/api/v3",
                    "strava_oauth_url": "http://127.0.0.1:9/oauth", "public_url": f"http://127.0.0.1:{port}"}
    return Settings.from_values(**{**values, **extra})


async def _ready(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _listen_forever(port: int, receive: Callable[[web.Request], Awaitable[web.Response]]) -> None:
    """A bare aiohttp app on 127.0.0.1:`port`: `receive` for POST /webhooks/strava, /readyz for the harness."""
    app = web.Application()
    app.router.add_post("/webhooks/strava", receive)
    app.router.add_get("/readyz", _ready)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await asyncio.Event().wait()


async def serve_bare(port: int) -> None:
    async def ok(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({"status": "ok"})

    await _listen_forever(port, ok)


FLOOR_TABLE = "bench_floor"


async def serve_bare_commit(port: int, database_url: str) -> None:
    """Each request: the body INSERTed and committed (PostgreSQL through an asyncpg pool of 4, as the
    intake's lanes; SQLite through `sqlite3` in one thread, WAL and synchronous=NORMAL, as the
    intake), then 200. What a handler that stores durably and does nothing else costs."""
    if database_url.startswith("sqlite"):
        from concurrent.futures import ThreadPoolExecutor

        db = sqlite3.connect(database_url.split(":///", 1)[1], isolation_level=None, check_same_thread=False)
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL"):
            db.execute(f"PRAGMA {pragma}")
        db.execute(f"CREATE TABLE IF NOT EXISTS {FLOOR_TABLE} (id INTEGER PRIMARY KEY, body TEXT)")
        executor = ThreadPoolExecutor(max_workers=1)

        def insert(body: str) -> None:
            db.execute("BEGIN IMMEDIATE")
            db.execute(f"INSERT INTO {FLOOR_TABLE} (body) VALUES (?)", (body,))
            db.execute("COMMIT")

        async def store(body: str) -> None:
            await asyncio.get_running_loop().run_in_executor(executor, insert, body)
    else:
        import asyncpg

        pool = await asyncpg.create_pool(database_url.replace("postgresql+asyncpg://", "postgresql://"),
                                         min_size=4, max_size=4)
        await pool.execute(f"CREATE TABLE IF NOT EXISTS {FLOOR_TABLE} (id bigserial PRIMARY KEY, body text)")

        async def store(body: str) -> None:
            await pool.execute(f"INSERT INTO {FLOOR_TABLE} (body) VALUES ($1)", body)

    async def commit(request: web.Request) -> web.Response:
        await store((await request.read()).decode())
        return web.json_response({"status": "stored"})

    await _listen_forever(port, commit)


async def serve_service(port: int, database_url: str, role: str) -> None:
    from service.app.bootstrap import open_runtime
    from service.app.factory import build_app
    from service.app.gc_tuning import freeze_startup_heap
    from service.app.roles import ALL, start_in_process_background
    from service.db.migrate import upgrade_to_head
    from service.subscription.state import remember_subscription

    rt = await open_runtime(bench_settings(database_url, port))
    await upgrade_to_head(rt.engine)
    async with rt.write() as session:
        await remember_subscription(session, SUBSCRIPTION_ID, rt.clock.now())
    app = build_app(rt, background=False)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    if role == ALL:  # as `fitglue serve` does
        await start_in_process_background(app, rt)
    freeze_startup_heap()
    await asyncio.Event().wait()


async def serve_worker(database_url: str) -> None:
    from service.app.bootstrap import open_runtime
    from service.background.loops import run_background

    rt = await open_runtime(bench_settings(database_url))
    async with run_background(rt):
        print("ready", flush=True)
        await asyncio.Event().wait()


def start_child(*args: str, stdout: int | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, __file__, *args], cwd=ROOT, stdout=stdout, text=True)


def stop_child(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@asynccontextmanager
async def scratch_database(kind: str) -> AsyncIterator[str]:
    """A fresh database: `sqlite` (a file in a new temporary folder) or `postgres` (created on the
    machine's server, dropped afterwards)."""
    if kind == "sqlite":
        yield f"sqlite+aiosqlite:///{Path(tempfile.mkdtemp(prefix='fitglue-bench-')) / 'bench.db'}"
        return
    import asyncpg

    name = f"fitglue_bench_{secrets.token_hex(5)}"
    admin = await asyncpg.connect(PG_ADMIN_DSN)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    try:
        yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    finally:
        admin = await asyncpg.connect(PG_ADMIN_DSN)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def count(database_url: str, sql: str) -> int:
    """One number from `sql` (plain SQL both databases understand)."""
    if database_url.startswith("sqlite"):
        with sqlite3.connect(database_url.split(":///", 1)[1]) as db:
            return int(db.execute(sql).fetchone()[0])
    import asyncpg

    db = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        return int(await db.fetchval(sql))
    finally:
        await db.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=["bare", "bare-commit", "service", "worker"])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--database-url")
    parser.add_argument("--role", default="all")
    cli = parser.parse_args()
    if cli.what == "bare":
        asyncio.run(serve_bare(cli.port))
    elif cli.what == "bare-commit":
        asyncio.run(serve_bare_commit(cli.port, cli.database_url))
    elif cli.what == "service":
        asyncio.run(serve_service(cli.port, cli.database_url, cli.role))
    else:
        asyncio.run(serve_worker(cli.database_url))
