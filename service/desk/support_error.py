"""The one failure SupportDesk operations raise: what the caller (CLI, admin API, Slack) must hear."""

from __future__ import annotations


class SupportError(Exception):
    """An operation that could not be done; `code` is the stable JSON error code, `exit_code` the
    CLI's exit status (2: bad input, 1: anything else)."""

    def __init__(self, code: str, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.code = code
        self.exit_code = exit_code
