"""The persisted retry queue (`jobs` table) and its worker."""

from .failures import PermanentJobError, WaitUntil
from .store import (
    DONE,
    FAILED,
    PRIORITY_CATCH_UP,
    PRIORITY_EVENT,
    PRIORITY_INTERACTIVE,
    QUEUED,
    RUNNING,
    STATES,
    WAITING_RATE_LIMIT,
    ClaimedJob,
    claim,
    enqueue,
)
from .worker import Worker

__all__ = [
    "DONE",
    "FAILED",
    "PRIORITY_CATCH_UP",
    "PRIORITY_EVENT",
    "PRIORITY_INTERACTIVE",
    "QUEUED",
    "RUNNING",
    "STATES",
    "WAITING_RATE_LIMIT",
    "WaitUntil",
    "ClaimedJob",
    "PermanentJobError",
    "Worker",
    "claim",
    "enqueue",
]
