"""The persisted retry queue (`jobs` table) and its worker."""

from service.background.queue.failures import PermanentJobError, WaitUntil
from service.background.queue.runner import Worker
from service.background.queue.store import (
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
