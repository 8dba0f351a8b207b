"""What every listener needs: the runtime, the SupportDesk and the access list."""

from __future__ import annotations

from dataclasses import dataclass

from bot.access import AccessList
from service.core.runtime import Runtime
from service.desk.support_desk import SupportDesk


@dataclass
class BotContext:
    rt: Runtime
    desk: SupportDesk
    access: AccessList
