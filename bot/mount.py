"""Mounting the bot on the service (called from `service.app.wiring`, the one place that imports `bot`).

HTTP mode when SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET are set; Socket Mode when SLACK_APP_TOKEN
(and SLACK_BOT_TOKEN) are set; no bot when none are. Half a configuration stops the start with a
ConfigError naming what is missing — never a 500 on every request.
"""

from __future__ import annotations

import logging

from aiohttp import web

from service.core.incidents import IncidentAlerts
from service.core.runtime import Runtime
from service.core.settings import ConfigError, Settings, reveal

log = logging.getLogger("fitglue.bot")

HTTP, SOCKET = "http", "socket"


def slack_mode(settings: Settings) -> str | None:
    token, secret, app_token = settings.slack_bot_token, settings.slack_signing_secret, settings.slack_app_token
    if app_token:
        if not token:
            raise ConfigError("SLACK_APP_TOKEN (Socket Mode) also needs SLACK_BOT_TOKEN", ["SLACK_BOT_TOKEN"])
        return SOCKET
    if token and not secret:
        raise ConfigError("SLACK_BOT_TOKEN is set but SLACK_SIGNING_SECRET is missing: the bot cannot verify "
                          "Slack's requests (set it, or set SLACK_APP_TOKEN for Socket Mode)",
                          ["SLACK_SIGNING_SECRET"])
    if secret and not token:
        raise ConfigError("SLACK_SIGNING_SECRET is set but SLACK_BOT_TOKEN is missing", ["SLACK_BOT_TOKEN"])
    return HTTP if token else None


def mount_bot(app: web.Application, rt: Runtime) -> str | None:
    """Returns the mode the bot runs in, or None when it is off."""
    mode = slack_mode(rt.settings)
    if mode is None:
        log.info("Slack bot off: set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET (or SLACK_APP_TOKEN) to enable it")
        if rt.settings.alert_channel:
            log.warning("FITGLUE_ALERT_CHANNEL is set but the Slack bot is off: alerts only go to the log")
        return None
    from bot.app import build_bolt_app

    bolt = build_bolt_app(rt, socket_mode=mode == SOCKET)
    if mode == SOCKET:
        from bot.socket import socket_mode_context

        assert rt.settings.slack_app_token
        app.cleanup_ctx.append(socket_mode_context(bolt, rt.settings.slack_app_token.get_secret_value(), rt))
    else:
        from bot.http import mount_http

        mount_http(app, bolt, reveal(rt.settings.slack_signing_secret) or "")
    _mount_courier(rt)
    if rt.settings.alert_channel:
        _post_alerts(rt)
    log.info("Slack bot on (%s mode)%s", "Socket" if mode == SOCKET else "HTTP",
             f", alerts to {rt.settings.alert_channel}" if rt.settings.alert_channel else "")
    return mode


def mount_alerts(rt: Runtime) -> bool:
    """For a worker (no Slack routes): the Slack Web API client, so the alerts raised by the
    background work it runs go to FITGLUE_ALERT_CHANNEL from here. True when they do; half a Slack
    configuration raises ConfigError, as for the bot."""
    mode = slack_mode(rt.settings)
    if mode is None:
        return False
    _mount_courier(rt)  # the queued bulk Connect-link runs and the daily digest run where the worker runs
    if not rt.settings.alert_channel:
        return False
    _post_alerts(rt)
    return True


def _mount_courier(rt: Runtime) -> None:
    from bot.app import web_client
    from bot.bulk_send import SlackCourier

    rt.courier = SlackCourier(rt, web_client(rt, token=reveal(rt.settings.slack_bot_token)))


def _post_alerts(rt: Runtime) -> None:
    from bot.alerts import SlackAlerts
    from bot.app import web_client

    assert rt.settings.alert_channel
    poster = SlackAlerts(web_client(rt, token=reveal(rt.settings.slack_bot_token)), rt.settings.alert_channel,
                         rt.settings.slack_timeout_s)
    rt.alerts = IncidentAlerts(rt, poster)


def manifest_text(settings: Settings) -> str:
    from bot.manifest import manifest_yaml

    return manifest_yaml(settings.public_url, socket_mode=bool(settings.slack_app_token))
