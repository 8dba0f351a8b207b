"""Every kind of job failure is classified permanent or transient (issue 9, kind 5), from Strava's
own fault bodies as the client maps them."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import OperationalError

from service.queue.failures import PermanentJobError, failure_reason, is_permanent
from service.strava.errors import classify
from standin.faults import (
    APPLICATION_INVALID,
    ATHLETE_TOKEN_INVALID,
    RATE_LIMIT_EXCEEDED,
    RECORD_NOT_FOUND,
    REFRESH_TOKEN_INVALID,
    bad_request,
    scope_missing,
)

PERMANENT = [
    (401, scope_missing("activity:read_permission")),  # missing scope
    (400, REFRESH_TOKEN_INVALID),  # grant dead
    (404, RECORD_NOT_FOUND),  # activity gone
    (404, None),  # gone, empty body
    (400, bad_request("Activity", "page")),  # our own bad request
    (422, None),
]
TRANSIENT = [
    (500, None), (502, None), (503, None), (408, None),  # Strava's side, timeouts
    (401, ATHLETE_TOKEN_INVALID),  # the access token: the next refresh decides
    (401, APPLICATION_INVALID),  # our app credentials: an operator fixes them
]


@pytest.mark.parametrize(("status", "body"), PERMANENT)
def test_permanent_strava_failures(status, body):
    error = classify(status, body, "activity")
    assert is_permanent(error)
    assert failure_reason(error, 1, 8).startswith("permanent: HTTP ")


@pytest.mark.parametrize(("status", "body"), TRANSIENT)
def test_transient_strava_failures(status, body):
    error = classify(status, body, "activity")
    assert not is_permanent(error)
    assert failure_reason(error, 1, 8) == error.summary
    assert failure_reason(error, 8, 8) == f"gave up after 8 attempts: {error.summary}"


def test_other_failures():
    assert is_permanent(PermanentJobError("bad payload"))
    assert not is_permanent(OperationalError("SELECT 1", {}, Exception("database is locked")))
    assert not is_permanent(TimeoutError())
    assert not is_permanent(classify(429, RATE_LIMIT_EXCEEDED))  # waits for the window; never parked by this
    assert failure_reason(OperationalError("SELECT secret", {}, Exception("x")), 1, 8) == \
        "database error (OperationalError)"
