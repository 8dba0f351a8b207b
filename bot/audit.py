"""Who asked, as the audit log names them: `slack:<user id>`.

Every command and click that reaches the bot, allowed or refused, is recorded through the desk
(`SupportDesk.record_request`, called by `bot.guard`); the desk's operations write their own entries
(what was done, the result). The bot writes no audit rows itself.
"""

from __future__ import annotations


def slack_actor(user_id: str | None) -> str:
    return f"slack:{user_id or 'unknown'}"
