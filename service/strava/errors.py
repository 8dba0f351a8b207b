"""Every Strava failure becomes one of a few typed errors, decided from the fault body's
`errors[].resource/field/code` and the status — never from the human message text.

Messages are built from those codes only, so no token or secret can ride along into a log.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from troubleshooting.vocabulary import RefreshErrorKind


@dataclass(frozen=True)
class FaultEntry:
    resource: str
    field: str
    code: str

    def __str__(self) -> str:
        return f"{self.resource}/{self.field}/{self.code}"


class StravaError(Exception):
    """Base class. `kind` is the short word stored and shown (e.g. in diagnosis facts)."""

    kind = "error"

    def __init__(self, message: str, status: int | None = None, faults: tuple[FaultEntry, ...] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.faults = faults

    @property
    def summary(self) -> str:
        codes = ", ".join(str(f) for f in self.faults)
        where = f"HTTP {self.status}" if self.status else "no response"
        return f"{where}: {self}" + (f" [{codes}]" if codes else "")


class GrantRevoked(StravaError):
    """400 RefreshToken/refresh_token/invalid: the grant is gone; only the user can fix it."""

    kind: str = RefreshErrorKind.GRANT_DEAD


class AppCredentialsRejected(StravaError):
    """Strava rejects our own client id/secret: an operator problem, never the user's."""

    kind: str = RefreshErrorKind.APP_CREDENTIALS_REJECTED


class BadAuthorizationCode(StravaError):
    kind = "bad_authorization_code"


class MissingScope(StravaError):
    """401 AccessToken/<scope>_permission/missing: refreshing will not help."""

    kind = "missing_scope"


class AccessTokenInvalid(StravaError):
    """401 on an API call with an invalid/expired/revoked access token (not proof of revocation)."""

    kind = "access_token_invalid"


class RateLimited(StravaError):
    kind: str = RefreshErrorKind.RATE_LIMITED


class Transient(StravaError):
    """Timeouts, connection failures, 5xx: try again later."""

    kind: str = RefreshErrorKind.TRANSIENT


class NotFound(StravaError):
    kind = "not_found"


class StravaRequestError(StravaError):
    """Any other 4xx: our request was wrong in a way retrying will not fix."""

    kind = "bad_request"


def parse_faults(body: Any) -> tuple[FaultEntry, ...]:
    if not isinstance(body, dict):
        return ()
    errors = body.get("errors")
    if not isinstance(errors, list):
        return ()
    entries = []
    for item in errors:
        if isinstance(item, dict):
            entries.append(
                FaultEntry(str(item.get("resource", "")), str(item.get("field", "")), str(item.get("code", "")))
            )
    return tuple(entries)


def classify(status: int, body: Any, context: str = "Strava request") -> StravaError:
    """Map a non-2xx response to a typed error."""
    faults = parse_faults(body)

    def has(resource: str | None = None, field: str | None = None, code: str | None = None) -> bool:
        return any(
            (resource is None or f.resource == resource)
            and (field is None or f.field == field)
            and (code is None or f.code == code)
            for f in faults
        )

    if status == 429 or has(code="exceeded"):
        return RateLimited(f"{context}: Strava rate limit exceeded", status, faults)
    if status >= 500:
        return Transient(f"{context}: Strava answered {status}", status, faults)
    if has("RefreshToken", "refresh_token", "invalid"):
        return GrantRevoked(f"{context}: the refresh token is no longer valid", status, faults)
    if has("Application"):
        return AppCredentialsRejected(f"{context}: Strava rejected the app's client id or secret", status, faults)
    if has("AuthorizationCode") or has("RequestToken"):
        return BadAuthorizationCode(f"{context}: the authorization code was rejected", status, faults)
    if has("AccessToken", code="missing"):
        missing = next(f.field for f in faults if f.resource == "AccessToken" and f.code == "missing")
        return MissingScope(f"{context}: the grant lacks a permission ({missing})", status, faults)
    if status == 401:
        return AccessTokenInvalid(f"{context}: the access token was not accepted", status, faults)
    if status == 404:
        return NotFound(f"{context}: not found", status, faults)
    if status == 408:
        return Transient(f"{context}: Strava timed out", status, faults)
    return StravaRequestError(f"{context}: Strava answered {status}", status, faults)
