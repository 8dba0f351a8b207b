"""Every command and click that reaches the bot — allowed or refused — goes to the audit log.

The SupportDesk operations write their own entries (what was done, the result); these entries
record who asked for what through Slack, including the requests that were turned away.
"""

from __future__ import annotations

from service.core.audit_log import add_entry
from service.core.runtime import Runtime


def slack_actor(user_id: str | None) -> str:
    return f"slack:{user_id or 'unknown'}"


async def record_request(rt: Runtime, user_id: str | None, action: str, target: str | None, result: str,
                         detail: str | None = None) -> None:
    async with rt.sessions() as session, session.begin():
        add_entry(session, rt.clock, slack_actor(user_id), action[:60], (target or None) and target[:320],
                  result, detail)
