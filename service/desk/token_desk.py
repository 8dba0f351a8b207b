"""The access-token operation for FitGlue's other services (`POST /internal/api/strava/token`).

`TokenDesk.issue(body)` takes the raw request body and returns the JSON answer
`{"athlete_id", "access_token", "expires_at", "granted_scopes", "refreshed"}`, or raises a
`TokenRefused` (a SupportError) whose `code` the route maps to its HTTP status. The contract is
DESIGN.md part 2, "access tokens for FitGlue", and the README's "Access-token endpoint".

Every call is audited with the actor `token-api`, the action `access_token`, the target (the user's
e-mail when known, else `who` as given) and the outcome, never the token. The entries are written
in batches off the request path (service.core.audit_batch), so auditing does not set the latency;
calls without the right key at most WRONG_KEY_ENTRIES_PER_MIN a minute.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from service.connections.token_access import IssuedToken, TokenUnavailable, valid_access_token
from service.connections.token_reads import TokenReader
from service.core.audit_batch import AuditBatch
from service.core.clock import iso_utc
from service.core.inputs import BadInput, Who, parse_json_object, parse_json_whole_number, parse_who_value
from service.core.runtime import Runtime
from service.desk.boundary import as_support_error
from service.desk.error_table import SupportError

log = logging.getLogger(__name__)

ACTOR = "token-api"
ACTION = "access_token"
REQUESTS = "fitglue_token_api_requests_total"
# Strava hands out a new access token only when the current one has an hour or less left (reference
# strava-api.md, "The one-hour rule"), so no refresh can promise more than 3600 s.
MAX_MIN_VALID_S = 3600
# When the body names no min_valid_s: ten minutes, the issue's example, enough for a few API calls.
DEFAULT_MIN_VALID_S = 600
FIELDS = frozenset({"who", "min_valid_s"})
# Retry-After (seconds) when the failure itself names no time: our database, our configuration.
RETRY_AFTER_S = {"database": 5, "configuration": 300}


class TokenRefused(SupportError):
    """No token for this call. `status` (409s): the connection's status; `retry_after_s` (503s)."""

    def __init__(self, code: str, message: str, *, status: str | None = None,
                 retry_after_s: int | None = None) -> None:
        super().__init__(code, message)
        self.status = status
        self.retry_after_s = retry_after_s

    @property
    def http_status(self) -> int:
        """The error table's status, except that whatever comes with a time to try again is 503 (the
        contract: `strava_app_misconfigured` too, which the admin API answers 502)."""
        return 503 if self.retry_after_s is not None else super().http_status


# A flood of calls with a wrong key must not write an audit entry each (entries are kept
# FITGLUE_AUDIT_RETENTION_DAYS, a year by default, and such a call costs the caller nothing): at most
# this many a minute are recorded. The rest are counted in the metric and in the next entry's detail.
WRONG_KEY_ENTRIES_PER_MIN = 10


class WrongKeyTally:
    """This runtime's calls without the right key, by minute on the runtime's clock (one per runtime:
    `rt.part(WrongKeyTally)`)."""

    def __init__(self, rt: Runtime) -> None:
        self.minute: datetime | None = None
        self.recorded = 0
        self.unrecorded = 0

    def admit(self, now: datetime) -> int | None:
        """None: past this minute's cap, only counted. Otherwise record this call, together with how
        many calls since the last entry were not recorded."""
        minute = now.replace(second=0, microsecond=0)
        if minute != self.minute:
            self.minute, self.recorded = minute, 0
        if self.recorded >= WRONG_KEY_ENTRIES_PER_MIN:
            self.unrecorded += 1
            return None
        self.recorded += 1
        skipped, self.unrecorded = self.unrecorded, 0
        return skipped


@dataclass(frozen=True)
class TokenRequest:
    who: Who
    min_valid_s: int


def parse_token_request(raw: bytes) -> TokenRequest:
    """`{"who": e-mail or athlete id, "min_valid_s": 0..3600 (default 600)}`, nothing else. Raises
    BadInput."""
    body = parse_json_object(raw, unique_keys=True)
    unknown = sorted(set(body) - FIELDS)
    if unknown:
        raise BadInput(f"unknown field(s) {', '.join(unknown)[:100]}: the body takes only who and "
                       "min_valid_s")
    if "who" not in body:
        raise BadInput("who is missing: give the user's e-mail address or Strava athlete id")
    who = parse_who_value(body["who"])
    min_valid = body.get("min_valid_s")
    if min_valid is None:
        return TokenRequest(who, DEFAULT_MIN_VALID_S)
    if isinstance(min_valid, int) and not isinstance(min_valid, bool) and min_valid > MAX_MIN_VALID_S:
        raise BadInput(f"min_valid_s may be at most {MAX_MIN_VALID_S}: Strava renews an access token only "
                       f"when it has an hour or less left, got {min_valid}"[:200])
    return TokenRequest(who, parse_json_whole_number(min_valid, "min_valid_s", low=0, high=MAX_MIN_VALID_S))


def _seconds_until(when: datetime, now: datetime) -> int:
    return max(1, math.ceil((when - now).total_seconds()))


def _answer(token: IssuedToken) -> dict[str, Any]:
    return {"athlete_id": token.athlete_id, "access_token": token.access_token,
            "expires_at": iso_utc(token.expires_at), "granted_scopes": list(token.granted_scopes),
            "refreshed": token.refreshed}


class TokenDesk:
    """One per app (the route's): it holds the reader of the endpoint's hot path. Close it with the app."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.reader = TokenReader(rt)

    async def close(self) -> None:
        await self.reader.close()

    def _record(self, target: str | None, outcome: str, detail: str | None, started: float) -> None:
        self.rt.metrics.inc(REQUESTS, outcome)
        self.rt.part(AuditBatch).record(ACTOR, ACTION, target, outcome, detail,
                                        int((time.monotonic() - started) * 1000))

    def refused_unauthorized(self) -> None:
        """Audit a call without the right bearer key (its body is never read): counted in the metric
        every time, recorded as an audit entry at most WRONG_KEY_ENTRIES_PER_MIN times a minute."""
        self.rt.metrics.inc(REQUESTS, "unauthorized")
        skipped = self.rt.part(WrongKeyTally).admit(self.rt.clock.now())
        if skipped is None:
            return
        detail = "missing or wrong FITGLUE_TOKEN_API_KEY"
        if skipped:
            detail += (f" ({skipped} more such call(s) since the last entry were not recorded: at most "
                       f"{WRONG_KEY_ENTRIES_PER_MIN} entries a minute)")
        self.rt.part(AuditBatch).record(ACTOR, ACTION, None, "unauthorized", detail, 0)

    async def issue(self, raw_body: bytes) -> dict[str, Any]:
        """The answer to one call. Raises TokenRefused: bad_argument, bad_email (400), unknown_user
        (404), not_connected/needs_reauth/revoked (409, with `status`), strava_unavailable,
        rate_limited, strava_app_misconfigured, configuration, database (503, with `retry_after_s`);
        service.desk.error_table has every code."""
        started = time.monotonic()
        target: str | None = None
        try:
            request = parse_token_request(raw_body)
            target = request.who.email or str(request.who.athlete_id)
            token = await valid_access_token(self.rt, self.reader, request.who, request.min_valid_s)
            if token is None:
                raise TokenRefused("unknown_user", f"no FitGlue user matches {target}")
        except BadInput as exc:
            self._record(target, "bad_request", str(exc), started)
            raise TokenRefused(exc.code, str(exc)) from None
        except TokenUnavailable as exc:
            self._record(target, exc.kind, str(exc), started)
            if exc.retry_at is None:  # a connection status: only the user can change it
                raise TokenRefused(exc.kind, str(exc), status=exc.status) from None
            raise TokenRefused(exc.kind, str(exc), status=exc.status,
                               retry_after_s=_seconds_until(exc.retry_at, self.rt.clock.now())) from None
        except TokenRefused as exc:
            self._record(target, exc.code, str(exc), started)
            raise
        except Exception as exc:  # Strava not configured, the database failing: the desk's one translation
            translated = as_support_error(exc, self.rt.settings.database_url)
            if translated is None:  # a bug: the route logs it
                self._record(target, "internal", type(exc).__name__, started)
                raise
            if translated.code == "database":
                log.warning("token API: %s", translated)
            self._record(target, translated.code, str(translated), started)
            raise TokenRefused(translated.code, str(translated),
                               retry_after_s=RETRY_AFTER_S.get(translated.code, 60)) from exc
        self._record(token.email, "refreshed" if token.refreshed else "ok",
                     f"min_valid_s={request.min_valid_s}", started)
        return _answer(token)
