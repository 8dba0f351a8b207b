"""The persisted retry queue (`jobs` table) and its worker."""

from service.queue.failures import PermanentJobError, WaitUntil
from service.queue.store import (
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
from service.queue.worker import Worker

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
