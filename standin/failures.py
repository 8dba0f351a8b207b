"""Failures queued by tests: the next N requests under a path answer a chosen error."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from standin.faults import default_body


@dataclass
class InjectedFailure:
    path_prefix: str
    status: int
    body: dict[str, Any]
    remaining: int
    timeout: bool


class FailureInjector:
    def __init__(self) -> None:
        self._queue: list[InjectedFailure] = []

    def add(
        self, path_prefix: str, status: int, body: dict[str, Any] | None, count: int, timeout: bool
    ) -> None:
        if count < 1:
            raise ValueError("count must be at least 1")
        body = body if body is not None else default_body(status)
        self._queue.append(InjectedFailure(path_prefix, status, body, count, timeout))

    def take(self, *paths: str) -> InjectedFailure | None:
        """The first queued failure matching any of ``paths``, used up by one."""
        for failure in self._queue:
            if any(p.startswith(failure.path_prefix) for p in paths):
                failure.remaining -= 1
                if failure.remaining == 0:
                    self._queue.remove(failure)
                return failure
        return None

    def clear(self) -> None:
        self._queue.clear()

    def __len__(self) -> int:
        return len(self._queue)
