"""The desk's edge: what goes wrong below it leaves it as a `SupportError`.

`as_support_error` is the one translation of the failures the layers below raise (the Strava
client's typed errors, `service/strava/errors.py`; SQLAlchemy's and the database driver's; a
missing setting; bad input) into error codes of `service.desk.error_table.ERRORS`.
`raises_only_support_error` applies it to every public coroutine method of a desk class, so each
adapter meets SupportError only. Anything else is a bug: it passes unchanged, so the adapter logs
it with its traceback and says only that something unexpected happened.
"""

from __future__ import annotations

import errno
import functools
import inspect
import socket
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

from service.core.inputs import BadInput
from service.core.settings import ConfigError
from service.desk.error_table import SupportError
from service.strava import AppCredentialsRejected, RateLimited, StravaError, Transient

DeskClass = TypeVar("DeskClass", bound=type)

_UNREACHABLE_ERRNOS = frozenset({errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ETIMEDOUT})


def database_location(url: str) -> str:
    """Where the database lives, for a message: the SQLite file, or the URL without its password."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return "(unparseable URL)"
    if parsed.get_backend_name() == "sqlite":
        return parsed.database or ":memory:"
    return parsed.render_as_string(hide_password=True)


def reason(exc: BaseException) -> str:
    """`TypeName: first line` of an exception (of the driver's own one when SQLAlchemy wraps it)."""
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip().splitlines()[0] if str(orig).strip() else ""
    return f"{type(orig).__name__}: {text}" if text else type(orig).__name__


def is_unreachable(exc: BaseException) -> bool:
    """A connection to a server that failed (refused, no route, unknown host, timed out). asyncpg
    raises these bare, not wrapped in a DBAPIError; with several addresses an OSError of them all."""
    if isinstance(exc, ConnectionError | socket.gaierror | TimeoutError):
        return True
    return isinstance(exc, OSError) and (exc.errno in _UNREACHABLE_ERRNOS
                                         or str(exc).startswith("Multiple exceptions"))


def strava_failure(exc: StravaError) -> SupportError:
    if isinstance(exc, RateLimited):
        return SupportError("rate_limited", "Strava's rate limit is used up; try again after the window resets")
    code = ("strava_app_misconfigured" if isinstance(exc, AppCredentialsRejected)
            else "strava_unavailable" if isinstance(exc, Transient) else "strava_error")
    return SupportError(code, f"Strava did not answer as expected ({exc.summary})")


def as_support_error(exc: BaseException, database_url: str) -> SupportError | None:
    """The SupportError that `exc` stands for, or None when it is none of the expected failures.

    `database_url` names the database in the message (never its password).
    """
    if isinstance(exc, SupportError):
        return exc
    if isinstance(exc, ConfigError):
        return SupportError("configuration", str(exc))
    if isinstance(exc, BadInput):  # BadEmail too: "bad_email"
        return SupportError(exc.code, str(exc))
    if isinstance(exc, StravaError):
        return strava_failure(exc)
    if isinstance(exc, ArgumentError | NoSuchModuleError):
        return SupportError("configuration", f"FITGLUE_DATABASE_URL is not a usable database URL ({reason(exc)})")
    where = database_location(database_url)
    if isinstance(exc, SQLAlchemyError):  # DBAPIError included
        return SupportError("database", f"the database at {where} could not be used ({reason(exc)}); check "
                            "FITGLUE_DATABASE_URL, that the storage is writable, and run `fitglue db upgrade`")
    if database_url and is_unreachable(exc):
        return SupportError("database", f"the database at {where} could not be reached ({reason(exc)}); check "
                            "FITGLUE_DATABASE_URL and that the database server is running")
    return None


def _translating(method: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(method)
    async def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await method(self, *args, **kwargs)
        except SupportError:
            raise
        except Exception as exc:
            translated = as_support_error(exc, self.rt.settings.database_url)
            if translated is None:
                raise
            raise translated from exc

    return call


def raises_only_support_error(cls: DeskClass) -> DeskClass:
    """Class decorator: every public coroutine method of `cls` (its bases' too) raises SupportError
    for the expected failures. The instance must have `rt` (the runtime, for the database URL)."""
    for name, member in inspect.getmembers(cls, inspect.iscoroutinefunction):
        if not name.startswith("_"):
            setattr(cls, name, _translating(member))
    return cls
