"""The one place that mounts optional parts (the Slack bot, webhook processing) onto the service.

The service never imports `bot` anywhere else.
"""

from __future__ import annotations

from aiohttp import web

from service.core.runtime import Runtime
from service.core.settings import Settings


async def wire_optional_parts(app: web.Application, rt: Runtime) -> None:
    _mount_slack_bot(app, rt)


def _mount_slack_bot(app: web.Application, rt: Runtime) -> None:
    """HTTP or Socket Mode per the SLACK_* settings, or no bot (logged); half a Slack configuration
    raises ConfigError here, at start. Also makes `rt.alerts` post to FITGLUE_ALERT_CHANNEL."""
    from bot import mount_bot

    mount_bot(app, rt)


def wire_worker_parts(rt: Runtime) -> None:
    """A worker (or the one-process serve's background thread) posts the alerts its background
    work raises through the Slack Web API when the bot is configured; no Slack routes."""
    from bot import mount_alerts

    mount_alerts(rt)


def slack_manifest(settings: Settings) -> str:
    """The Slack app manifest (YAML) for this configuration, for `fitglue manifest`."""
    from bot import manifest_text

    return manifest_text(settings)
