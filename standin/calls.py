"""The record of the request being handled, so handlers can note whose request it is."""

from __future__ import annotations

from contextvars import ContextVar

from standin.config import CallRecord

CURRENT_CALL: ContextVar[CallRecord | None] = ContextVar("sandbox_current_call", default=None)


def note_athlete(athlete_id: int) -> None:
    """Attach the athlete to the current request's CallRecord (a no-op outside a request)."""
    record = CURRENT_CALL.get()
    if record is not None:
        record.athlete_id = athlete_id
