"""Block Kit for every bot reply. Pure functions: plain data in (the SupportDesk results'
`to_dict()` shapes, or a `Diagnosis`), a `Reply` or a view out. Nothing here talks to Slack.

One module per surface: a diagnosis (`diagnosis_blocks`), Connect links (`link_messages`), the
operations' results (`operation_replies`), help, refusals and alerts (`notices`), and the App Home
tab (`home_tab`). Callers use `bot.render.<renderer>`; every renderer is re-exported here.
"""

from bot.render.affected_blocks import affected, bulk_progress
from bot.render.diagnosis_blocks import action_button, diagnosis
from bot.render.digest_blocks import digest
from bot.render.history_blocks import history, history_button
from bot.render.home_tab import home_refusal, home_view
from bot.render.link_messages import link_dm, link_for_agent, link_message_for_user, link_sent
from bot.render.notices import alert, alert_resolved, failure, help_message, refusal, working
from bot.render.operation_replies import events_retried, rate_limits, refresh_result, webhook

__all__ = [
    "action_button",
    "affected",
    "bulk_progress",
    "alert",
    "alert_resolved",
    "diagnosis",
    "digest",
    "events_retried",
    "failure",
    "help_message",
    "history",
    "history_button",
    "home_refusal",
    "home_view",
    "link_dm",
    "link_for_agent",
    "link_message_for_user",
    "link_sent",
    "rate_limits",
    "refresh_result",
    "refusal",
    "webhook",
    "working",
]
