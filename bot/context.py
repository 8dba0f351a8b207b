"""What every listener needs: the runtime, the SupportDesk and the access list."""

from __future__ import annotations

from dataclasses import dataclass

from service.runtime import Runtime
from service.support import SupportDesk

from .access import AccessList


@dataclass
class BotContext:
    rt: Runtime
    desk: SupportDesk
    access: AccessList
