"""The webhook intake as the Strava webhook route sees it (`service.desk.webhook_intake.EventReceiver`):
parse the body, drop another subscription's event, store the rest; nothing but the intake's own awaits."""

from __future__ import annotations

import logging

from service.background.webhooks.intake import EventIntake, IntakeUnavailable
from service.background.webhooks.strava_events import BadEvent, parse_event
from service.desk.webhook_intake import DUPLICATE, FOREIGN, REJECTED, STORED, UNAVAILABLE, Receipt

log = logging.getLogger(__name__)


class IntakeReceiver:
    def __init__(self, intake: EventIntake) -> None:
        self.intake = intake

    async def receive(self, raw: bytes) -> Receipt:
        try:
            event = parse_event(raw)
        except BadEvent as exc:
            return Receipt(REJECTED, str(exc))
        try:
            if await self.intake.is_foreign(event.subscription_id):
                return Receipt(FOREIGN)
            stored = await self.intake.submit(event)
        except Exception as exc:  # IntakeUnavailable, or the database failing in the ownership check
            if not isinstance(exc, IntakeUnavailable):
                log.warning("webhook event not stored: %s", type(exc).__name__)
            return Receipt(UNAVAILABLE)
        return Receipt(STORED if stored else DUPLICATE)

    async def close(self) -> None:
        await self.intake.close()
