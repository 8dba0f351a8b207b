"""Building the Bolt app: one Web API client on the service's HTTP session, the listeners, the
access check in front of every command and button."""

from __future__ import annotations

import logging

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from service.runtime import Runtime
from service.support import SupportDesk

from .access import AccessList
from .actions import HANDLERS, button_listener
from .commands import COMMAND
from .context import BotContext
from .guard import support_only
from .home import home_opened
from .slash import fitglue_command

log = logging.getLogger(__name__)


def quiet_slack_sdk_bodies() -> None:
    """slack_sdk logs whole request bodies at DEBUG — Connect links in DMs and replies among them.
    Links must never reach a log, so those loggers stop at INFO whatever FITGLUE_LOG_LEVEL says."""
    for name in ("slack_sdk", "fitglue.bot.slack_api"):
        logger = logging.getLogger(name)
        if logger.level < logging.INFO:  # NOTSET (inherit) included: a DEBUG root must not reach them
            logger.setLevel(logging.INFO)


def web_client(rt: Runtime) -> AsyncWebClient:
    settings = rt.settings
    return AsyncWebClient(token=settings.slack_bot_token, base_url=settings.slack_api_url, session=rt.http,
                          logger=logging.getLogger("fitglue.bot.slack_api"))


def build_bolt_app(rt: Runtime, *, socket_mode: bool = False) -> AsyncApp:
    quiet_slack_sdk_bodies()
    bot = BotContext(rt, SupportDesk(rt), AccessList(rt.settings.support_slack_ids))
    if bot.access.empty:
        log.warning("FITGLUE_SUPPORT_SLACK_IDS is empty: the Slack bot refuses everybody (the refusal tells "
                    "each person their user id)")
    bolt = AsyncApp(
        client=web_client(rt),
        signing_secret=rt.settings.slack_signing_secret or "",
        # Socket Mode payloads arrive over an authenticated WebSocket and carry no signature.
        request_verification_enabled=not socket_mode,
        # Long-lived process: the HTTP answer goes out at ack(), the listener goes on in a task.
        process_before_response=False,
    )
    guard = support_only(bot)
    bolt.command(COMMAND, middleware=[guard])(fitglue_command(bot))
    for action_id in HANDLERS:
        bolt.action(action_id, middleware=[guard])(button_listener(bot, action_id))
    bolt.event("app_home_opened")(home_opened(bot))
    return bolt
