"""The Slack bot: a thin adapter over SupportDesk — parsing, access checks, Block Kit, listeners.

The service reaches it only through `service.app.wiring`.
"""

from bot.mount import manifest_text, mount_alerts, mount_bot, slack_mode

__all__ = ["manifest_text", "mount_alerts", "mount_bot", "slack_mode"]
