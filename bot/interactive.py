"""Every `action_id` the bot's messages can carry — and so every `block_actions` request Slack can
send back. `app.py` registers one listener per id from here, so an element whose id is missing here
gets Slack's "unhandled request" 404; `tests/bot/test_interactive.py` renders every message the bot can
send, clicks each element and fails on exactly that.
"""

from __future__ import annotations

from troubleshooting import ACTIONS

# Buttons under a diagnosis (and under a webhook report): run a SupportDesk operation for an agent,
# behind the access check. The diagnosis vocabulary's actions are these buttons' ids.
AGENT_ACTIONS: tuple[str, ...] = ACTIONS

# Buttons that show more (a user's history, its older pages): read-only, behind the same access check.
NAVIGATION: tuple[str, ...] = ("show_history", "more_history")
# "Send Connect links to all N" under `/fitglue affected`: queues a bulk run (bot/bulk_send.py).
SEND_LINKS_BULK = "send_links_bulk"

# The URL button in a user's Connect-link DM. Slack opens the URL itself and still sends a
# block_actions request, which only needs its 200; the person clicking is the user, not an agent.
OPEN_CONNECT_LINK = "open_connect_link"
URL_BUTTONS: tuple[str, ...] = (OPEN_CONNECT_LINK,)

ACTION_IDS: tuple[str, ...] = AGENT_ACTIONS + NAVIGATION + (SEND_LINKS_BULK,) + URL_BUTTONS
