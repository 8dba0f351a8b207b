"""The local Slack: its workspace, Web API, Socket Mode hub, relay and page, on one loopback port."""

from __future__ import annotations

from dataclasses import dataclass, field

import aiohttp
from aiohttp import web

from sandbox_slack import pages
from sandbox_slack.keys import LOCAL_SLACK
from sandbox_slack.relay import Relay
from sandbox_slack.socket_mode import SocketHub
from sandbox_slack.web_api import WebApi
from sandbox_slack.workspace import Workspace
from service.core.request_bodies import body_reader
from service.core.same_site import loopback_names_only

BODY_READ_TIMEOUT_S = 10.0


@dataclass
class LocalSlack:
    """``bot_token`` is the one token its Web API accepts; ``app_token`` (an `xapp-…`) enables Socket
    Mode; ``signing_secret`` signs what is relayed over HTTP to ``events_url`` (the service's
    /slack/events, set once the service listens). ``reply_wait_s``: how long a page request waits for
    the bot's reply before showing the channel (the page then reloads until it comes, as long again);
    ``settle_s``: the same after an acknowledgement that already showed a message."""

    bot_token: str
    signing_secret: str = ""
    app_token: str | None = None
    events_url: str = ""
    reply_wait_s: float = 10.0
    settle_s: float = 3.0  # the wait after an acknowledgement that carried a message
    base_url: str = ""
    workspace: Workspace = field(default_factory=Workspace)
    hub: SocketHub = field(default_factory=SocketHub)
    relay: Relay = field(init=False)

    def __post_init__(self) -> None:
        self.relay = Relay(self.workspace, self.hub, "", self.events_url, self.signing_secret)

    def point_at(self, events_url: str) -> None:
        """Relay requests over HTTP to ``events_url`` (when no Socket Mode client is connected)."""
        self.events_url = self.relay.events_url = events_url

    def build_app(self) -> web.Application:
        # Loopback only, by address and by name (DNS rebinding: service.core.same_site).
        app = web.Application(middlewares=[loopback_names_only, body_reader(BODY_READ_TIMEOUT_S)])
        app[LOCAL_SLACK] = self
        api = WebApi(self.workspace, self.hub, self.bot_token, self.app_token,
                     lambda: self.base_url.replace("http://", "ws://", 1))
        api.add_routes(app)
        self.hub.add_routes(app)
        pages.add_routes(app)

        async def session(app: web.Application):  # noqa: ANN202 - cleanup_ctx generator
            self.relay.http = aiohttp.ClientSession()
            yield
            await self.hub.close()
            await self.relay.http.close()

        app.cleanup_ctx.append(session)
        return app


async def start_local_slack(slack: LocalSlack, host: str = "127.0.0.1", port: int = 0) -> tuple[web.AppRunner, str]:
    """Serve ``slack`` on loopback; returns the runner (``await runner.cleanup()`` stops it) and its base URL."""
    runner = web.AppRunner(slack.build_app(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    bound = runner.addresses[0][1] if runner.addresses else port
    slack.base_url = slack.relay.base_url = f"http://{host}:{bound}"
    return runner, slack.base_url
