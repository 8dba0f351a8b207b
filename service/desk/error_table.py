"""`SupportError`, and the one table that says what each of its codes means to each adapter.

SupportDesk raises `SupportError` for every failure the caller must hear (`service.desk.boundary`
translates the Strava client's typed errors, database failures, configuration and bad input into
one at the desk's edge). `code` is the stable JSON error code (`{"error": CODE, "message": TEXT}`,
DESIGN.md part 2). The admin API answers the table's HTTP status, the CLI exits with its exit
status (0 done, 1 the operation failed, 2 usage or configuration: DESIGN.md part 2), and Slack
and the admin API say `public_message`: the table's fixed wording where the error's own message can
name internals (the database's location, an exception's text), else that message. The CLI's
reader is the operator at their own terminal, so it always gets the full message.

A code that is not in the table is a programming error: `SupportError` refuses to be built with it
(tests/unit/test_error_table.py raises every row and scans the code for codes used).
"""

from __future__ import annotations

from dataclasses import dataclass

from service.connections.refresh import RefreshResult
from troubleshooting.vocabulary import ConnectionStatus, RefreshErrorKind

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


@dataclass(frozen=True)
class Treatment:
    """What the adapters do with one error code."""

    http_status: int  # the admin API's answer
    exit_code: int  # the CLI's exit status: EXIT_FAILED or EXIT_USAGE
    public: str | None = None  # what HTTP and Slack say instead of the message; None: the message itself


_UNEXPECTED = "the operation failed unexpectedly; the details are in the service log"

ERRORS: dict[str, Treatment] = {
    # The caller asked wrong: nothing was changed.
    "bad_argument": Treatment(400, EXIT_USAGE),
    "bad_email": Treatment(400, EXIT_USAGE),
    "bad_state": Treatment(400, EXIT_USAGE),
    "usage": Treatment(400, EXIT_USAGE),
    "exists": Treatment(409, EXIT_USAGE),  # `fitglue init` will not overwrite a file
    "unknown_user": Treatment(404, EXIT_FAILED),
    "not_found": Treatment(404, EXIT_FAILED),
    # The target's state refuses the operation.
    "not_retryable": Treatment(409, EXIT_FAILED),
    "not_connected": Treatment(409, EXIT_FAILED),
    "needs_reauth": Treatment(409, EXIT_FAILED),
    "revoked": Treatment(409, EXIT_FAILED),
    "busy": Treatment(409, EXIT_FAILED),
    # Our set-up, our storage, or Strava: the operation could not be done now.
    "configuration": Treatment(503, EXIT_USAGE),
    "database": Treatment(503, EXIT_FAILED, "the database is unavailable"),
    "storage": Treatment(503, EXIT_FAILED, "the service cannot write to its storage"),
    "rate_limited": Treatment(503, EXIT_FAILED),
    "strava_unavailable": Treatment(503, EXIT_FAILED),
    "strava_error": Treatment(502, EXIT_FAILED),
    "strava_app_misconfigured": Treatment(502, EXIT_FAILED),
    "refresh_failed": Treatment(502, EXIT_FAILED),
    "registration_failed": Treatment(502, EXIT_FAILED),
    "os_error": Treatment(500, EXIT_FAILED, _UNEXPECTED),
    "internal": Treatment(500, EXIT_FAILED, _UNEXPECTED),
}


class SupportError(Exception):
    """An operation that could not be done; `code` (a key of `ERRORS`) is the stable JSON error code,
    str() the plain message. Raises KeyError for a code the table does not have."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.treatment = ERRORS[code]
        self.code = code

    @property
    def http_status(self) -> int:
        return self.treatment.http_status

    @property
    def exit_code(self) -> int:
        return self.treatment.exit_code

    @property
    def public_message(self) -> str:
        """The wording for the admin API and Slack."""
        return self.treatment.public or str(self)


# A refresh that ran but did not refresh: its error kind (or status) → the error code it means.
REFRESH_FAILURES = {
    ConnectionStatus.NOT_CONNECTED: "not_connected",
    ConnectionStatus.NEEDS_REAUTH: "needs_reauth",
    RefreshErrorKind.GRANT_DEAD: "needs_reauth",
    ConnectionStatus.REVOKED: "revoked",
    "busy": "busy",  # another refresh of the token holds its lease
    RefreshErrorKind.RATE_LIMITED: "rate_limited",
    RefreshErrorKind.TRANSIENT: "strava_unavailable",
    RefreshErrorKind.APP_CREDENTIALS_REJECTED: "strava_app_misconfigured",
}


def refresh_failure(result: RefreshResult) -> SupportError:
    """The error a refresh that did not refresh stands for (`refreshed` is False); the desk returns it
    as a result, not an error, because the CLI and Slack show the result either way."""
    code = REFRESH_FAILURES.get(result.error_kind or result.status,
                                REFRESH_FAILURES.get(result.status, "refresh_failed"))
    return SupportError(code, f"{result.email}: {result.error or result.status}")
