"""Typed application keys (aiohttp warns on plain string keys)."""

from __future__ import annotations

from aiohttp import web

from service.core.runtime import Runtime

RUNTIME = web.AppKey("runtime", Runtime)
