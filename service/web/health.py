"""Liveness and readiness."""

from __future__ import annotations

from aiohttp import web

from service.desk.vitals import readiness
from service.web.keys import RUNTIME


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    body = await readiness(request.app[RUNTIME])
    return web.json_response(body, status=200 if body["status"] == "ok" else 503)
