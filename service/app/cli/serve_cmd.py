"""`fitglue serve [--role all|web] [--sandbox]`: HTTP routes, Slack bot and webhook intake; with the
default role `all` also the scheduler and queue worker, in a background thread (`service.app.roles`)."""

from __future__ import annotations

import argparse
import asyncio
import errno
import logging
import signal
import socket
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING

from aiohttp import web

from service.app.bootstrap import open_runtime, sqlite_workers_settled, upgrade_to_head
from service.app.cli.output import EXIT_OK, report_failure
from service.app.factory import build_app
from service.app.gc_tuning import freeze_startup_heap
from service.app.roles import ALL, SERVE_ROLES, app_runner, start_in_process_background
from service.app.sandbox.folder import SandboxFolder, sandbox_folder
from service.core.inputs import BadInput, parse_port
from service.core.logs import configure_logging
from service.core.runtime import Runtime
from service.core.settings import SERVE_REQUIRES, ConfigError, Settings, load_settings
from service.desk.support_desk import SupportDesk
from service.web.index_page import SANDBOX_FRONT_PAGE, SandboxFrontPage

if TYPE_CHECKING:
    from service.app.sandbox.session import Sandbox

log = logging.getLogger("fitglue.serve")

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


async def _serve(settings: Settings, folder: SandboxFolder | None, role: str = ALL) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    # What is opened is closed in reverse: the background loops, the HTTP server, the runtime, the stand-ins.
    async with AsyncExitStack() as stack:
        sandbox = None
        if folder is not None:
            from service.app.sandbox.session import running_sandbox

            sandbox = await stack.enter_async_context(running_sandbox(settings, folder))
            settings = sandbox.settings
            # The sandbox's own secrets (generated or kept in its folder) join the log scrubber.
            configure_logging(settings.log_level, settings.log_format, settings.secret_values())
            log.warning("SANDBOX MODE: Strava is a local stand-in at %s — nothing talks to the real Strava",
                        sandbox.standin_base)
        rt = await open_runtime(settings)
        stack.push_async_callback(rt.close)
        from service.app.wiring import wire_optional_parts

        await upgrade_to_head(rt.engine)
        app = build_app(rt, background=False)
        front = await _sandbox_front_page(app, rt, sandbox) if sandbox is not None else None
        await wire_optional_parts(app, rt)
        runner = app_runner(app, settings)
        await runner.setup()
        stack.push_async_callback(runner.cleanup)
        await _listen(runner, settings)
        if role == ALL:  # events stored meanwhile are durable: the next start takes them up
            stack.push_async_callback((await start_in_process_background(app, rt)).stop)
        freeze_startup_heap()
        log.info("FitGlue listening on http://%s:%s (public URL %s)%s", settings.host,
                 runner.addresses[0][1] if runner.addresses else settings.port, settings.public_url,
                 "" if role == ALL else "; web role: stored events wait for a `fitglue worker`")
        if front is not None:
            from service.app.sandbox.front_page import banner

            print(banner(front, settings.public_url), flush=True)
        await stop.wait()
        log.info("shutting down: no new work is taken, work in flight finishes or is released")
    return EXIT_OK


async def _sandbox_front_page(app: web.Application, rt: Runtime, sandbox: Sandbox) -> SandboxFrontPage:
    """The first Connect link, the export file, and the index page at / that shows them."""
    from service.app.sandbox.front_page import follow_the_standin, front_page

    front = app[SANDBOX_FRONT_PAGE] = await front_page(sandbox, SupportDesk(rt))
    follow_the_standin(sandbox, rt, front)
    return front


async def _serve_settled(settings: Settings, folder: SandboxFolder | None, role: str) -> int:
    async with sqlite_workers_settled():
        return await _serve(settings, folder, role)


def _stop_on_sigterm(_signum: int, _frame: object) -> None:
    # Until the event loop takes SIGTERM over: end like Ctrl-C, so every `finally` runs (the sandbox's
    # temporary folder goes).
    raise KeyboardInterrupt


def cmd_serve(args: argparse.Namespace) -> int:
    settings = None
    sandbox = args.sandbox or args.sandbox_dir is not None
    try:
        settings = load_settings()
        if args.host is not None:
            if not args.host.strip():
                raise ConfigError("--host is empty; give an address to listen on (FITGLUE_HOST sets the default)",
                                  ["FITGLUE_HOST"])
            settings = settings.replaced(host=args.host.strip())
        if args.port is not None:
            settings = settings.replaced(port=_port_option(args.port))
        if sandbox and args.role != ALL:
            raise ConfigError("--sandbox runs everything in one process: leave out --role", [])
        settings.require_events_secret()
        if not sandbox:
            _require_serve_settings(settings)
            check_listen_address(settings)
            configure_logging(settings.log_level, settings.log_format, settings.secret_values())
            return asyncio.run(_serve_settled(settings, None, args.role))
        from service.app.sandbox.sandbox_settings import check_no_real_strava, without_earlier_export

        check_no_real_strava(settings)
        settings = without_earlier_export(settings)
        check_listen_address(settings)
        configure_logging(settings.log_level, settings.log_format, settings.secret_values())
        signal.signal(signal.SIGTERM, _stop_on_sigterm)
        with sandbox_folder(args.sandbox_dir) as folder:
            return asyncio.run(_serve_settled(settings, folder, ALL))
    except Exception as exc:  # noqa: BLE001 - one line and the documented status, never a traceback
        return report_failure(exc, settings.database_url if settings else "", False)


def _require_serve_settings(settings: Settings) -> None:
    try:
        settings.require(*SERVE_REQUIRES)
    except ConfigError as exc:
        raise ConfigError(f"{exc}; to try FitGlue with nothing configured, run `fitglue serve --sandbox`",
                          exc.names) from None


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
    serve.add_argument("--sandbox", action="store_true",
                       help="run beside local stand-ins for Strava and Slack, for trying it out (nothing to configure)")
    serve.add_argument("--sandbox-dir", metavar="DIR",
                       help="like --sandbox, keeping its state in DIR between runs (default: a temporary folder, "
                            "removed on exit)")
    serve.set_defaults(handler=cmd_serve)

