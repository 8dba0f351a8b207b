"""Building the Bolt app: one Web API client on the service's HTTP session, the listeners, the
access check in front of every command and button."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from slack_bolt.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.logger.messages import warning_client_prioritized_and_token_skipped, warning_token_skipped
from slack_sdk.web.async_client import AsyncWebClient

from bot.access import AccessList
from bot.actions import acknowledge_url_button, button_listener
from bot.bulk_send import bulk_button_listener
from bot.commands import COMMAND
from bot.context import BotContext
from bot.guard import support_only
from bot.home import home_opened
from bot.interactive import AGENT_ACTIONS, NAVIGATION, SEND_LINKS_BULK, URL_BUTTONS
from bot.slash import fitglue_command
from service.core.runtime import Runtime
from service.core.settings import reveal
from service.desk.support_desk import SupportDesk

log = logging.getLogger(__name__)


def quiet_slack_sdk_bodies() -> None:
    """slack_sdk logs whole request bodies at DEBUG — Connect links in DMs and replies among them.
    Links must never reach a log, so those loggers stop at INFO whatever FITGLUE_LOG_LEVEL says."""
    for name in ("slack_sdk", "fitglue.bot.slack_api"):
        logger = logging.getLogger(name)
        if logger.level < logging.INFO:  # NOTSET (inherit) included: a DEBUG root must not reach them
            logger.setLevel(logging.INFO)


class _NoTokenNotes(logging.Filter):
    """Bolt reads SLACK_BOT_TOKEN from the environment by itself, and when it finds it beside our own
    `client` and `authorize` it warns, on every start, that it will not use it. We mean exactly that:
    the token reaches each listener through `static_token`. Only those two notes are dropped."""

    NOTES = frozenset({warning_client_prioritized_and_token_skipped(), warning_token_skipped()})

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() not in self.NOTES


_BOLT_LOGGER = logging.getLogger(f"slack_bolt.{AsyncApp.__name__}")  # slack_bolt.logger.get_bolt_logger's name


def quiet_token_notes() -> None:
    if not any(isinstance(f, _NoTokenNotes) for f in _BOLT_LOGGER.filters):
        _BOLT_LOGGER.addFilter(_NoTokenNotes())


def web_client(rt: Runtime, *, token: str | None = None) -> AsyncWebClient:
    settings = rt.settings
    return AsyncWebClient(token=token, base_url=settings.slack_api_url, session=rt.http,
                          logger=logging.getLogger("fitglue.bot.slack_api"))


def static_token(token: str):  # noqa: ANN201 - Bolt's authorize callable
    """One workspace, one configured bot token: nothing to look up.

    Without this, Bolt calls `auth.test` on the first request (until one succeeds) before the
    listener can acknowledge — and whatever went wrong there (a 503, a proxy's page, a timeout)
    it answers "please reinstall this app" and logs an ERROR. A token that really is bad shows
    instead as `invalid_auth` on the call that needed it, with the reason in the agent's reply.
    """

    # Bolt passes arguments by these names (and warns about any other name, **kwargs included).
    async def authorize(enterprise_id: str | None, team_id: str | None, user_id: str | None) -> AuthorizeResult:
        return AuthorizeResult(enterprise_id=enterprise_id, team_id=team_id, user_id=user_id, bot_token=token)

    return authorize


def build_bolt_app(rt: Runtime, *, socket_mode: bool = False) -> AsyncApp:
    quiet_slack_sdk_bodies()
    quiet_token_notes()
    settings = rt.settings
    access = AccessList(settings.support_slack_ids, timeout_s=settings.slack_timeout_s)
    bot = BotContext(rt, SupportDesk(rt), access)
    if bot.access.empty:
        log.warning("FITGLUE_SUPPORT_SLACK_IDS is empty: the Slack bot refuses everybody (the refusal tells "
                    "each person their user id)")
    bolt = AsyncApp(
        # The token comes through `authorize`; each listener's client gets it from there.
        client=web_client(rt),
        authorize=static_token(reveal(settings.slack_bot_token) or ""),
        signing_secret=reveal(settings.slack_signing_secret) or "",
        # Socket Mode payloads arrive over an authenticated WebSocket and carry no signature.
        request_verification_enabled=not socket_mode,
        # Long-lived process: the HTTP answer goes out at ack(), the listener goes on in a task.
        process_before_response=False,
    )
    guard = support_only(bot)
    bolt.command(COMMAND, middleware=[guard])(held_by(rt, fitglue_command(bot)))
    # Every interactive element the bot posts is acknowledged; interactive.py lists them all.
    for action_id in AGENT_ACTIONS + NAVIGATION:
        bolt.action(action_id, middleware=[guard])(held_by(rt, button_listener(bot, action_id)))
    bolt.action(SEND_LINKS_BULK, middleware=[guard])(held_by(rt, bulk_button_listener(bot)))
    for action_id in URL_BUTTONS:
        bolt.action(action_id)(acknowledge_url_button)  # acknowledges, nothing more
    bolt.event("app_home_opened")(held_by(rt, home_opened(bot)))
    return bolt


_Listener = TypeVar("_Listener", bound=Callable[..., Awaitable[None]])


def held_by(rt: Runtime, listener: _Listener) -> _Listener:
    """`listener`, with the task Bolt runs it in held by the runtime.

    With process_before_response=False Bolt answers Slack at ack() and runs the rest of the
    listener in a task nothing awaits (slack_bolt.listener.asyncio_runner). Held, that task is
    awaited by `Runtime.close` before the database pool closes (service.core.wind_down says why).
    `functools.wraps` keeps the listener's parameters visible: Bolt passes arguments by name,
    reading them through `inspect.unwrap`.
    """

    @functools.wraps(listener)
    async def held(*args: Any, **kwargs: Any) -> None:
        task = asyncio.current_task()
        if task is not None:
            rt.keep(task)
        await listener(*args, **kwargs)

    return held  # type: ignore[return-value]
