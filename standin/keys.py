"""The application key under which the stand-in's controller lives."""

from __future__ import annotations

from aiohttp import web

from standin.standin import StravaStandin

STANDIN_KEY: web.AppKey[StravaStandin] = web.AppKey("strava_standin", StravaStandin)
