"""A local stand-in for Slack, for `fitglue serve --sandbox` and the tests: Slack's Web API for the
bot (`/api/{method}`, response URLs, Socket Mode), and a web page that looks like a support channel.

From the page a person types `/fitglue …` and presses the bot's buttons; the server (never the
browser) builds each request as Slack would, signs it with the signing secret and relays it to the
service's `/slack/events`, or hands it over an open Socket Mode connection. What the bot sends back
(ephemeral replies, direct messages, the App Home, alerts) is rendered from its Block Kit.

Loopback only, started only by `--sandbox` and tests. It is Slack, not FitGlue: it imports nothing of
the service but its core (the request-body reader), and nothing of the bot.
"""

from sandbox_slack.app import LocalSlack, start_local_slack
from sandbox_slack.workspace import AGENT, ALERTS_CHANNEL, OUTSIDER, SUPPORT_CHANNEL, Workspace

__all__ = ["AGENT", "ALERTS_CHANNEL", "OUTSIDER", "SUPPORT_CHANNEL", "LocalSlack", "Workspace", "start_local_slack"]
