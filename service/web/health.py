"""Liveness and readiness."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import text

from service.db.migrate import is_migrated
from service.web.keys import RUNTIME


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    try:
        async with rt.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        migrated = await is_migrated(rt.engine)
    except Exception as exc:  # any database failure means "not ready"
        return web.json_response({"status": "unavailable", "database": type(exc).__name__}, status=503)
    if not migrated:
        return web.json_response({"status": "unavailable", "database": "ok", "migrations": "pending"}, status=503)
    return web.json_response({"status": "ok", "database": "ok", "migrations": "current"})
