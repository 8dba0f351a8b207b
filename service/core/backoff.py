"""The one definition of backoff: how long to wait after repeated failures.

Used by the token refresh (`service.connections.refresh`) and the retry queue (`service.queue.store`),
each with its own first wait.
"""

from __future__ import annotations

from datetime import timedelta


def exponential_backoff(failures: int, first_s: float, max_s: float) -> timedelta:
    """`first_s`, then twice that, four times … after the 1st, 2nd, 3rd failure, never more than
    `max_s` (seconds). Zero or fewer failures count as one."""
    return timedelta(seconds=min(first_s * 2 ** max(failures - 1, 0), max_s))
