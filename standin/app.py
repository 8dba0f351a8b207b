"""Building and starting the stand-in application."""

from __future__ import annotations

from aiohttp import web

from service.core.clock import Clock
from service.core.request_bodies import body_reader
from service.core.same_site import loopback_names_only
from standin import api_routes, control_routes, oauth_routes, subscriptions
from standin.config import StandinConfig
from standin.keys import STANDIN_KEY
from standin.middleware import standin_middleware
from standin.standin import StravaStandin


def build_standin_app(standin: StravaStandin, *, loopback_only: bool = False) -> web.Application:
    """``loopback_only``: answer only requests addressed to localhost / 127.x (DNS rebinding), for a
    stand-in that listens on loopback."""
    # Bodies are read whole (bounded in size and time) as the service reads them.
    app = web.Application(middlewares=[*([loopback_names_only] if loopback_only else []), standin_middleware,
                                       body_reader(lambda: standin.config.body_read_timeout_s)])
    app[STANDIN_KEY] = standin
    oauth_routes.add_routes(app)
    api_routes.add_routes(app)
    subscriptions.add_routes(app)
    control_routes.add_routes(app)
    standin.events.add_routes(app)

    async def close_outgoing(app: web.Application) -> None:
        await app[STANDIN_KEY].aclose()

    async def wake_stalled(app: web.Application) -> None:
        app[STANDIN_KEY].stopping()

    app.on_shutdown.append(wake_stalled)
    app.on_cleanup.append(close_outgoing)
    return app


async def start_standin(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    config: StandinConfig | None = None,
    clock: Clock | None = None,
) -> tuple[StravaStandin, web.AppRunner, str]:
    """Serve a new stand-in; returns it, its runner (``await runner.cleanup()`` to stop) and its
    base URL. OAuth lives under base + "/oauth", the API under base + "/api/v3"."""
    standin = StravaStandin(config, clock)
    loopback = host == "localhost" or host == "::1" or host.startswith("127.")
    runner = web.AppRunner(build_standin_app(standin, loopback_only=loopback), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound_port = runner.addresses[0][1] if runner.addresses else port  # the port the OS picked for 0
    url_host = f"[{host}]" if ":" in host else host
    standin.base_url = f"http://{url_host}:{bound_port}"
    return standin, runner, standin.base_url
