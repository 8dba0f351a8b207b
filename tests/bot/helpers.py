"""Assertions shared by the bot tests."""

from __future__ import annotations

import json
from typing import Any

from slack_sdk.models.blocks import Block

from service.db.models import AuditEntry

ACK_BUDGET_S = 3.0


def assert_valid_blocks(message: dict[str, Any], limit: int = 50) -> None:
    """Top-level text present; every block passes slack_sdk's Block Kit validators."""
    assert message.get("text"), message
    blocks = message.get("blocks") or []
    assert len(blocks) <= limit
    for block in blocks:
        parsed = Block.parse(block)
        assert parsed is not None, block
        parsed.to_dict()  # runs the length validators; raises SlackObjectFormationError


def ack_json(response: Any, body: bytes) -> dict[str, Any]:
    return json.loads(body) if body else {}


def everything(message: dict[str, Any]) -> str:
    return json.dumps(message)


async def audit_rows(rt: Any) -> list[AuditEntry]:
    from sqlalchemy import select

    async with rt.sessions() as session:
        return list((await session.execute(select(AuditEntry).order_by(AuditEntry.id))).scalars())
