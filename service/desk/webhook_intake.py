"""What `POST /webhooks/strava` asks of the webhook intake, and what it hears back.

The intake runs in `service.background.webhooks` (`receiver.IntakeReceiver`), which sits above the
desk, so the desk names the operation and the app factory hands the route an implementation: the
same inversion as the runtime's `AlertSink`. Hot path: an implementation makes only the intake's
own awaits (the ownership check, which reads the database at most once a second, and the batched
store).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

# What became of an event (also the `outcome` label of fitglue_webhook_events_received_total).
STORED, DUPLICATE, FOREIGN, REJECTED, UNAVAILABLE = "stored", "duplicate", "foreign", "rejected", "error"


@dataclass(frozen=True, slots=True)
class Receipt:
    outcome: str  # one of the words above
    problem: str = ""  # REJECTED: what is wrong with the body, in plain words


class EventReceiver(Protocol):
    async def receive(self, raw: bytes) -> Receipt:
        """Check one event body (Strava's push event JSON), drop it when it names another push
        subscription (FOREIGN), else store it and its job (STORED, or DUPLICATE for a redelivery).
        UNAVAILABLE: it could not be stored, so Strava must deliver it again. Never raises."""
        ...

    async def close(self) -> None:
        """Finish the stores under way (application cleanup)."""
        ...
