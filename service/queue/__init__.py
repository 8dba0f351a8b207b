"""The persisted retry queue (`jobs` table): writing, claiming, settling and listing jobs, and how a
job's failure is classified. Writing a job is a function over a database session, so a state change
and the work it implies commit together. Running jobs is `service.background`'s.

May import `service.subscription`, `service.strava`, `service.ratelimit`, `service.core`, `service.db`.
"""

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
    "claim",
    "enqueue",
]
