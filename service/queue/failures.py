"""How a queued job's run can end other than in success, and which failures are worth retrying.

- **Permanent** failures settle the job as failed at once; retrying cannot change Strava's answer,
  and every retry would spend a call of the shared budget. They are: a missing scope (401
  `AccessToken/<scope>_permission/missing`), a dead grant (400 `RefreshToken/refresh_token/invalid`),
  an object gone at Strava (404), a request Strava calls malformed (any other 4xx), and a
  `PermanentJobError` a handler raises (e.g. the connection is no longer active).
- **Transient** failures are retried with backoff: timeouts, connection failures, 5xx, an access
  token Strava did not accept (the next refresh decides whether the grant is dead), the app's own
  credentials rejected (an operator fixes those), database errors, and anything unexpected.
- `WaitUntil` is not a failure: the job goes back to the queue until a given time and the attempt
  does not count (Strava's 429 is handled the same way by the worker).

The reason kept in `jobs.last_error` says which it was, for `fitglue jobs` and the diagnosis.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.exc import SQLAlchemyError

from service.strava import GrantRevoked, MissingScope, NotFound, StravaError, StravaRequestError
from service.strava.errors import BadAuthorizationCode

PERMANENT_STRAVA_ERRORS = (MissingScope, GrantRevoked, NotFound, StravaRequestError, BadAuthorizationCode)
PERMANENT_PREFIX = "permanent: "


class PermanentJobError(Exception):
    """Retrying will not help: park the job as failed now. The message is the reason shown."""


class WaitUntil(Exception):
    """Put the job back until `until` (UTC) without counting the attempt; `waiting_for` is the
    short word `fitglue jobs` shows, `reason` the sentence kept as its last error."""

    def __init__(self, until: datetime, waiting_for: str, reason: str) -> None:
        super().__init__(reason)
        self.until = until
        self.waiting_for = waiting_for
        self.reason = reason


def is_permanent(exc: BaseException) -> bool:
    return isinstance(exc, (PermanentJobError, *PERMANENT_STRAVA_ERRORS))


def describe_error(exc: BaseException) -> str:
    """A short, secret-free description (SQL errors may quote parameters, so only their type)."""
    if isinstance(exc, StravaError):
        return exc.summary
    if isinstance(exc, SQLAlchemyError):
        return f"database error ({type(exc).__name__})"
    if isinstance(exc, PermanentJobError):
        return str(exc)[:300]
    return f"{type(exc).__name__}: {str(exc)[:300]}"


# Checked in order; the first match says what would have to change for the work to succeed.
_WHAT_WOULD_HELP: tuple[tuple[type[BaseException], str], ...] = (
    (MissingScope, "the athlete must connect again and grant the missing permission"),
    (GrantRevoked, "the athlete must connect again"),
    (NotFound, "it no longer exists at Strava, or is private"),
    (StravaRequestError, "Strava refuses the request itself, and a retry would send the same one"),
)


def failure_reason(exc: BaseException, attempts: int, max_attempts: int) -> str:
    """The `last_error` of a failed run: permanent, given up after the last attempt, or retrying."""
    text = describe_error(exc)
    if is_permanent(exc):
        help_ = next((words for kind, words in _WHAT_WOULD_HELP if isinstance(exc, kind)),
                     "retrying cannot change the outcome")
        return f"{PERMANENT_PREFIX}{text} (not retried: {help_})"
    if attempts >= max_attempts:
        return f"gave up after {attempts} attempt{'' if attempts == 1 else 's'}: {text}"
    return text
