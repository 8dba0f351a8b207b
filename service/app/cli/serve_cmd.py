"""`fitglue serve [--role all|web] [--sandbox]`: HTTP routes, Slack bot and webhook intake; with the
default role `all` also the scheduler and queue worker, in a background thread (`service.app.roles`)."""

from __future__ import annotations

import argparse
import asyncio
import errno
import logging
import signal
import socket
import tempfile
from pathlib import Path

from aiohttp import web

from service.app.bootstrap import open_runtime, sqlite_workers_settled, upgrade_to_head
from service.app.cli.output import EXIT_OK, report_failure
from service.app.factory import build_app
from service.app.gc_tuning import freeze_startup_heap
from service.app.roles import ALL, SERVE_ROLES, BackgroundThread, start_in_process_background
from service.core.crypto import generate_events_secret, generate_secret
from service.core.inputs import BadInput, parse_port
from service.core.logs import configure_logging
from service.core.settings import SERVE_REQUIRES, ConfigError, Settings, load_settings, reveal
from service.desk.support_desk import SupportDesk

log = logging.getLogger("fitglue.serve")

SANDBOX_EMAIL = "sandbox-athlete@example.com"


def _sandbox_settings(settings: Settings, standin_base: str, client_id: str, client_secret: str,
                      events_path: str = "/fitglue/events") -> Settings:
    """The settings for a sandbox: Strava is the stand-in at `standin_base`, and so are FitGlue's other
    services (its event receiver at `events_path`), unless FITGLUE_EVENTS_URL names a receiver of one's own."""
    changes: dict = {
        "sandbox": True,
        "strava_client_id": client_id,
        "strava_client_secret": client_secret,
        "strava_oauth_url": f"{standin_base}/oauth",
        "strava_api_url": f"{standin_base}/api/v3",
        "strava_webhook_verify_token": settings.strava_webhook_verify_token or generate_secret(),
    }
    if not settings.events_url:
        changes["events_url"] = f"{standin_base}{events_path}"
        changes["events_secret"] = generate_events_secret()
    if "public_url" not in settings.model_fields_set:  # FITGLUE_PUBLIC_URL not given
        host = "localhost" if settings.host in ("127.0.0.1", "localhost", "0.0.0.0", "::") else settings.host
        changes["public_url"] = f"http://{host}:{settings.port}"
    if not settings.secret_key:
        # Nothing configured: everything is throw-away (the stand-in forgets its athletes on exit too).
        changes["secret_key"] = generate_secret()
        if "database_url" not in settings.model_fields_set:
            folder = Path(tempfile.mkdtemp(prefix="fitglue-sandbox-"))
            changes["database_url"] = f"sqlite+aiosqlite:///{folder / 'fitglue.db'}"
    return settings.replaced(**changes)


def _address_problem(settings: Settings, exc: OSError) -> ConfigError:
    """The listen address cannot be used (in use, not this machine's, not resolvable): a configuration
    problem, named by its option and setting."""
    if exc.errno == errno.EADDRINUSE:
        return ConfigError(f"port {settings.port} on {settings.host} is already in use; choose another with "
                           "--port or FITGLUE_PORT (or stop what is using it)", ["FITGLUE_PORT"])
    return ConfigError(f"cannot listen on {settings.host}:{settings.port} ({exc.strerror or exc}); check --host "
                       "or FITGLUE_HOST and --port or FITGLUE_PORT", ["FITGLUE_HOST", "FITGLUE_PORT"])


def check_listen_address(settings: Settings) -> None:
    """Fail fast, before migrations and background work start: try to bind each address the host
    resolves to, then let go. (The real bind below can still fail, e.g. in a race; it says the same.)"""
    try:
        infos = socket.getaddrinfo(settings.host, settings.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        for family, kind, proto, _name, address in infos:
            with socket.socket(family, kind, proto) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as asyncio's server does
                probe.bind(address)
    except OSError as exc:  # socket.gaierror included
        raise _address_problem(settings, exc) from None


async def _listen(runner: web.AppRunner, settings: Settings) -> None:
    site = web.TCPSite(runner, settings.host, settings.port)
    try:
        await site.start()
    except OSError as exc:
        raise _address_problem(settings, exc) from None


async def _serve(settings: Settings, sandbox: bool, role: str = ALL) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    standin_runner = None
    if sandbox:
        from standin import StandinConfig, start_standin

        standin_config = StandinConfig()
        _standin, standin_runner, base = await start_standin("127.0.0.1", 0, config=standin_config)
        settings = _sandbox_settings(settings, base, standin_config.client_id, standin_config.client_secret,
                                     _standin.events.path)
        settings.require_events_secret()
        _standin.events.secret = reveal(settings.events_secret)
        log.warning("SANDBOX MODE: Strava is a local stand-in at %s — nothing talks to the real Strava", base)
    else:
        settings.require(*SERVE_REQUIRES)

    rt = await open_runtime(settings)
    runner: web.AppRunner | None = None
    background: BackgroundThread | None = None
    try:
        from service.app.wiring import wire_optional_parts

        await upgrade_to_head(rt.engine)
        app = build_app(rt, background=False)
        await wire_optional_parts(app, rt)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await _listen(runner, settings)
        if role == ALL:
            background = await start_in_process_background(app, rt)
        freeze_startup_heap()
        log.info("FitGlue listening on http://%s:%s (public URL %s)%s", settings.host,
                 runner.addresses[0][1] if runner.addresses else settings.port, settings.public_url,
                 "" if role == ALL else "; web role: stored events wait for a `fitglue worker`")
        if sandbox:
            issued = await SupportDesk(rt).issue_connect_link(SANDBOX_EMAIL, "sandbox")
            print("\n  SANDBOX: FitGlue is running against a local Strava stand-in.\n"
                  f"  Next step: open this Connect link in a browser to try the whole flow:\n\n    {issued.url}\n",
                  flush=True)
        await stop.wait()
        log.info("shutting down: no new work is taken, work in flight finishes or is released")
    finally:
        if background is not None:  # events stored meanwhile are durable: the next start takes them up
            await background.stop()
        if runner is not None:
            await runner.cleanup()
        await rt.close()
        if standin_runner is not None:
            await standin_runner.cleanup()
    return EXIT_OK


async def _serve_settled(settings: Settings, sandbox: bool, role: str) -> int:
    async with sqlite_workers_settled():
        return await _serve(settings, sandbox, role)


def cmd_serve(args: argparse.Namespace) -> int:
    settings = None
    try:
        settings = load_settings()
        if args.host is not None:
            if not args.host.strip():
                raise ConfigError("--host is empty; give an address to listen on (FITGLUE_HOST sets the default)",
                                  ["FITGLUE_HOST"])
            settings = settings.replaced(host=args.host.strip())
        if args.port is not None:
            settings = settings.replaced(port=_port_option(args.port))
        if args.sandbox and args.role != ALL:
            raise ConfigError("--sandbox runs everything in one process: leave out --role", [])
        if args.sandbox and (settings.strava_client_id or settings.strava_client_secret):
            raise ConfigError("--sandbox refuses to run while real Strava credentials are configured "
                              "(unset STRAVA_CLIENT_ID and STRAVA_CLIENT_SECRET)",
                              ["STRAVA_CLIENT_ID", "STRAVA_CLIENT_SECRET"])
        if not args.sandbox:
            settings.require(*SERVE_REQUIRES)
        settings.require_events_secret()
        check_listen_address(settings)
        configure_logging(settings.log_level, settings.log_format, settings.secret_values())
        return asyncio.run(_serve_settled(settings, args.sandbox, args.role))
    except Exception as exc:  # noqa: BLE001 - one line and the documented status, never a traceback
        return report_failure(exc, settings.database_url if settings else "", False)


def _port_option(raw: str) -> int:
    try:
        return parse_port(raw, "--port")
    except BadInput as exc:
        raise ConfigError(f"{exc} (the port to listen on; FITGLUE_PORT sets the default)", ["FITGLUE_PORT"]) from None


def register(sub: argparse._SubParsersAction) -> None:
    serve = sub.add_parser("serve", help="run the service (HTTP, Slack bot, scheduler, worker)")
    serve.add_argument("--role", choices=SERVE_ROLES, default=ALL,
                       help="all (default): everything in one process; web: HTTP, Slack bot and webhook intake "
                            "only (run `fitglue worker` beside it)")
    serve.add_argument("--host", help="listen address (default FITGLUE_HOST)")
    serve.add_argument("--port", help="listen port, 0-65535 (default FITGLUE_PORT)")
    serve.add_argument("--sandbox", action="store_true", help="run beside a local Strava stand-in, for trying it out")
    serve.set_defaults(handler=cmd_serve)

