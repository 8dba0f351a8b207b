"""`fitglue worker [--health-port P]`: the queue worker and the scheduler, no HTTP routes (roles)."""

from __future__ import annotations

import argparse
import asyncio
import socket

from service.app.bootstrap import sqlite_workers_settled
from service.app.cli.output import EXIT_OK, report_failure
from service.app.roles import run_worker
from service.core.inputs import BadInput, parse_port
from service.core.logs import configure_logging
from service.core.settings import ConfigError, Settings, load_settings

# The background work calls Strava (events, catch-ups, refreshes); it never validates a subscription.
WORKER_REQUIRES = ("FITGLUE_SECRET_KEY", "STRAVA_CLIENT_ID", "STRAVA_CLIENT_SECRET")


def _health_port(raw: str, settings: Settings) -> int:
    """The --health-port, checked now (before migrations and background work start)."""
    try:
        port = parse_port(raw, "--health-port")
    except BadInput as exc:
        raise ConfigError(f"{exc} (the port of the worker's /healthz and /readyz)", []) from None
    try:
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((settings.host, port))
    except OSError as exc:
        raise ConfigError(f"cannot listen on {settings.host}:{port} ({exc.strerror or exc}); choose another "
                          "--health-port (FITGLUE_HOST sets the address)", ["FITGLUE_HOST"]) from None
    return port


async def _run_settled(settings: Settings, health_port: int | None) -> None:
    async with sqlite_workers_settled():
        await run_worker(settings, health_port)


def cmd_worker(args: argparse.Namespace) -> int:
    settings = None
    try:
        settings = load_settings()
        settings.require(*WORKER_REQUIRES)
        settings.require_events_secret()  # the worker delivers the outbound events
        health_port = _health_port(args.health_port, settings) if args.health_port is not None else None
        configure_logging(settings.log_level, settings.log_format, settings.secret_values())
        asyncio.run(_run_settled(settings, health_port))
        return EXIT_OK
    except Exception as exc:  # noqa: BLE001 - one line and the documented status, never a traceback
        return report_failure(exc, settings.database_url if settings else "", False)


def register(sub: argparse._SubParsersAction) -> None:
    worker = sub.add_parser("worker", help="run the queue worker and the scheduler (no HTTP routes)")
    worker.add_argument("--health-port", help="also serve /healthz and /readyz on this port, for an orchestrator")
    worker.set_defaults(handler=cmd_worker)
