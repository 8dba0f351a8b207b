"""The one error table (service/desk/error_table.py) and the desk's edge (service/desk/boundary.py).

Every code the service uses has a row; every failure from below the desk leaves it as a SupportError
with the right code; a bug is not dressed up as one. How each adapter answers each row is tested
through the real adapters in tests/integration/test_error_table_adapters.py and
tests/bot/test_error_replies.py.
"""

from __future__ import annotations

import errno
import inspect
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy.exc import ArgumentError, IntegrityError, OperationalError

from service.core.inputs import BadEmail, BadInput
from service.core.settings import ConfigError
from service.desk.boundary import as_support_error, raises_only_support_error
from service.desk.error_table import ERRORS, EXIT_FAILED, EXIT_USAGE, REFRESH_FAILURES, SupportError
from service.desk.support_desk import SupportDesk
from service.strava import AppCredentialsRejected, GrantRevoked, NotFound, RateLimited, StravaError
from service.strava.errors import Transient

ROOT = Path(__file__).resolve().parents[2]
DATABASE_URL = "postgresql+asyncpg://fitglue:hunter2-secret@db.internal:5432/fitglue"

# A failure from below the desk, and the code it must leave the desk with.
LOWER_FAILURES = [
    (ConfigError("Strava is not configured: set STRAVA_CLIENT_ID", ["STRAVA_CLIENT_ID"]), "configuration"),
    (BadEmail("'x' is not an e-mail address"), "bad_email"),
    (BadInput("limit must be a whole number"), "bad_argument"),
    (RateLimited("rate limit exceeded", 429), "rate_limited"),
    (AppCredentialsRejected("client secret rejected", 401), "strava_app_misconfigured"),
    (Transient("service unavailable", 503), "strava_unavailable"),
    (GrantRevoked("refresh token invalid", 400), "strava_error"),
    (NotFound("no such activity", 404), "strava_error"),
    (StravaError("something else"), "strava_error"),
    (OperationalError("SELECT 1", {}, Exception("disk I/O error")), "database"),
    (IntegrityError("INSERT", {}, Exception("UNIQUE constraint failed")), "database"),
    (ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"), "database"),
    (TimeoutError(), "database"),
    (ArgumentError("Could not parse SQLAlchemy URL"), "configuration"),
]


def test_every_row_gives_a_status_an_exit_status_and_words() -> None:
    for code, row in ERRORS.items():
        assert re.fullmatch(r"[a-z_]+", code), code
        assert 400 <= row.http_status < 600, code
        assert row.exit_code in (EXIT_FAILED, EXIT_USAGE), code  # DESIGN.md part 2: 1 failed, 2 usage/config
        assert row.public is None or row.public.strip(), code
        error = SupportError(code, f"{code} happened")
        assert (error.http_status, error.exit_code) == (row.http_status, row.exit_code)
        assert error.public_message == (row.public or f"{code} happened")
    # The contract's fixed points.
    assert ERRORS["bad_argument"].http_status == 400 and ERRORS["bad_argument"].exit_code == EXIT_USAGE
    assert ERRORS["configuration"].exit_code == EXIT_USAGE
    assert ERRORS["unknown_user"].http_status == 404


def test_a_code_outside_the_table_cannot_be_raised() -> None:
    with pytest.raises(KeyError):
        SupportError("no_such_code", "whatever")


# SupportError("code", …), WebhookQueueOps's self._error("code", …), the CLI's fail("code", …).
_CODE_USE = re.compile(r"\b(?:SupportError|_error|fail)\(\s*\"([a-z_]+)\"")


def test_every_code_the_service_uses_is_in_the_table() -> None:
    used: dict[str, str] = {}
    for path in [*ROOT.joinpath("service").rglob("*.py"), *ROOT.joinpath("bot").rglob("*.py")]:
        for code in _CODE_USE.findall(path.read_text()):
            used.setdefault(code, str(path.relative_to(ROOT)))
    used.update({code: "REFRESH_FAILURES" for code in REFRESH_FAILURES.values()})
    assert len(used) >= 15, used  # the pattern still finds the raise sites
    assert {code: where for code, where in used.items() if code not in ERRORS} == {}


@raises_only_support_error
class _Desk:
    def __init__(self, failure: BaseException) -> None:
        self.rt = SimpleNamespace(settings=SimpleNamespace(database_url=DATABASE_URL))
        self.failure = failure

    async def operate(self) -> None:
        raise self.failure

    async def _private(self) -> None:
        raise self.failure


@pytest.mark.parametrize(("failure", "code"), LOWER_FAILURES, ids=lambda v: type(v).__name__ if not isinstance(v, str) else v)
async def test_the_desk_edge_turns_each_lower_failure_into_its_code(failure: Exception, code: str) -> None:
    with pytest.raises(SupportError) as caught:
        await _Desk(failure).operate()
    assert caught.value.code == code and caught.value.__cause__ is failure
    assert "hunter2" not in str(caught.value)  # the database URL's password never rides along
    assert as_support_error(failure, DATABASE_URL).code == code


async def test_a_bug_leaves_the_desk_as_it_is() -> None:
    bug = KeyError("no such key")
    with pytest.raises(KeyError) as caught:
        await _Desk(bug).operate()
    assert caught.value is bug
    assert as_support_error(bug, DATABASE_URL) is None


async def test_only_public_methods_are_wrapped() -> None:
    with pytest.raises(ConfigError):
        await _Desk(ConfigError("x"))._private()


def _operations(cls: type) -> list[tuple[str, object]]:
    return [(name, member) for name, member in inspect.getmembers(cls, inspect.iscoroutinefunction)
            if not name.startswith("_")]


def test_every_public_operation_of_the_support_desk_is_behind_the_edge() -> None:
    operations = _operations(SupportDesk)
    assert len(operations) >= 8
    assert [name for name, member in operations if not hasattr(member, "__wrapped__")] == []


def test_every_public_operation_of_each_desk_service_is_behind_the_edge() -> None:
    # The services are whatever SupportDesk sets as attributes besides the runtime, so a new one is
    # checked without being listed here.
    desk = SupportDesk(SimpleNamespace())  # type: ignore[arg-type]  # the services only keep the runtime
    services = {name: type(value) for name, value in vars(desk).items() if name != "rt"}
    assert set(services) >= {"webhooks", "home", "events", "history", "affected", "bulk_links"}
    operations = [(f"desk.{name}.{op}", member) for name, cls in services.items() for op, member in _operations(cls)]
    assert len(operations) >= 17
    assert [name for name, member in operations if not hasattr(member, "__wrapped__")] == []
