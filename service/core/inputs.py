"""Strict parsing of what comes from outside: ids, limits, cursors, ports, e-mails, `WHO`, form bodies.

The one place that decides what a number, an id or an e-mail address from a user, an operator or
another system may look like. The admin API, the Slack bot, the CLI and the settings all call these
functions, so the same text is accepted or refused the same way everywhere.

Why strict: `str.isdigit()` and `int()` accept far more than ASCII digits ('²', '١٢', '+5', ' 7 ',
'1_000'), and a number that fits Python may not fit the database (BIGINT). Text that would reach
the database must not hold NUL, surrogates or other control characters either. Every parser here
raises `BadInput` (a ValueError) with a plain message naming the argument; callers turn it into a
400, a usage error (exit 2) or a plain Slack reply. Pure: no I/O.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

# A Strava id (athlete, activity, subscription): database BIGINT.
MAX_ID = 2**63 - 1
# One of our own rows (a job, an audit entry): database INTEGER.
MAX_ROW_ID = 2**31 - 1
MAX_EMAIL_LENGTH = 320
MAX_PORT = 65535
# The most entries one page of any listing (audit log, jobs) may ask for. Above it a limit is
# refused, never silently clamped: the same rule in the admin API, the CLI and the bot.
MAX_LIMIT = 500

_ASCII_DIGITS = re.compile(r"[0-9]+")
# One "@", no whitespace, no characters that mark a list, a quote or Slack markup around an
# address, and a domain of at least two non-empty dot-separated labels.
_EMAIL = re.compile(r"[^@\s<>|,;:\"()\[\]\\]+@(?:[^@\s<>|,;:\"()\[\]\\.]+\.)+[^@\s<>|,;:\"()\[\]\\.]+")
# A "%" not followed by two hex digits: parse_qsl would keep it as it is, silently.
_BROKEN_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
# Unicode categories never part of an address: controls (NUL…), format characters (zero-width
# joiners, bidi overrides), surrogates (undecodable bytes in argv), private use, unassigned.
_FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})


class BadInput(ValueError):
    """Input that is not what it must be. `code` is the stable JSON error code; str() is the message."""

    code = "bad_argument"


class BadEmail(BadInput):
    """An argument that must be an e-mail address is not a well-formed one."""

    code = "bad_email"


def _shown(raw: object) -> str:
    """The input quoted for a message, cut short so a huge value does not flood it."""
    text = repr(raw) if isinstance(raw, str) else repr(str(raw))
    return text if len(text) <= 60 else text[:57] + "…'"


def parse_whole_number(raw: object, name: str, *, low: int = 0, high: int = MAX_ID) -> int:
    """ASCII digits only (no sign, no spaces, no other scripts' digits), between low and high inclusive.

    Raises BadInput naming `name`.
    """
    text = raw if isinstance(raw, str) else ""
    if not _ASCII_DIGITS.fullmatch(text):
        raise BadInput(f"{name} must be a whole number written with the digits 0-9, got {_shown(raw)}")
    # Leading zeros are harmless; the length check keeps int() cheap on a million-digit input.
    if len(text.lstrip("0")) > len(str(high)) or not low <= int(text) <= high:
        raise BadInput(f"{name} must be from {low} to {high}, got {_shown(raw)}")
    return int(text)


def parse_id(raw: object, name: str) -> int:
    """A Strava id (athlete, activity): 1 to 2^63-1, ASCII digits. Raises BadInput."""
    return parse_whole_number(raw, name, low=1, high=MAX_ID)


def parse_row_id(raw: object, name: str) -> int:
    """The id of one of our rows (a job, an audit entry): 1 to 2^31-1, ASCII digits. Raises BadInput."""
    return parse_whole_number(raw, name, low=1, high=MAX_ROW_ID)


def parse_limit(raw: str | None, name: str, *, default: int, maximum: int = MAX_LIMIT) -> int:
    """A page size. Missing or empty: `default`. Outside 1..maximum: refused (never clamped), the
    same rule for the admin API, the CLI and the bot. Raises BadInput."""
    if raw is None or raw == "":
        return default
    return parse_whole_number(raw, name, low=1, high=maximum)


def parse_cursor(raw: str | None, name: str) -> int | None:
    """A `before` cursor (the row id of the last entry of the previous page); missing or empty: None."""
    if raw is None or raw == "":
        return None
    return parse_row_id(raw, name)


def parse_port(raw: object, name: str) -> int:
    """A TCP port to listen on: 0 (any free port) to 65535. Raises BadInput."""
    return parse_whole_number(raw, name, low=0, high=MAX_PORT)


def parse_text(raw: str | None, name: str, *, max_length: int = MAX_EMAIL_LENGTH) -> str | None:
    """A free-text filter (an audit actor, action or target). Missing or empty: None. Refused when
    longer than max_length or holding control, format, surrogate or unassigned characters (NUL is
    an error for PostgreSQL, a surrogate for every driver). Raises BadInput."""
    if raw is None or raw == "":
        return None
    if len(raw) > max_length or any(unicodedata.category(ch) in _FORBIDDEN_CATEGORIES for ch in raw):
        raise BadInput(f"{name} must be at most {max_length} printable characters, got {_shown(raw)}")
    return raw


def storable(text: str | None, max_length: int) -> str | None:
    """Outside text made safe to keep as it is recorded (an audit target, a detail): characters no
    database column may hold (NUL, lone surrogates) and other controls become U+FFFD, and the text
    is cut to max_length. A record of a request is never lost to what the request contained."""
    if text is None:
        return None
    cleaned = "".join("\ufffd" if unicodedata.category(ch) in _FORBIDDEN_CATEGORIES else ch for ch in text)
    return cleaned[:max_length]


def is_email(text: object) -> bool:
    """The one e-mail rule: one `@`, a dotted domain, at most 320 characters, no whitespace, list or
    markup characters, no control, format, surrogate or unassigned characters."""
    if not isinstance(text, str) or len(text) > MAX_EMAIL_LENGTH or not _EMAIL.fullmatch(text):
        return False
    return not any(unicodedata.category(ch) in _FORBIDDEN_CATEGORIES for ch in text)


def normalize_email(raw: object) -> str:
    """The address without surrounding whitespace, case kept. Raises BadEmail."""
    email = raw.strip() if isinstance(raw, str) else ""
    if not is_email(email):
        raise BadEmail(f"{_shown(raw)} is not a well-formed e-mail address")
    return email


@dataclass(frozen=True)
class Who:
    """A user named either by e-mail (lower-cased, for look-ups) or by Strava athlete id."""

    email: str | None
    athlete_id: int | None


def parse_who(raw: object) -> Who:
    """`WHO`: a well-formed e-mail address or a Strava athlete id in ASCII digits.

    Anything else raises BadInput (a usage error): a well-formed address that matches nobody is
    for the caller to report as an unknown user, not this function.
    """
    text = raw.strip() if isinstance(raw, str) else ""
    if _ASCII_DIGITS.fullmatch(text):
        return Who(None, parse_id(text, "a Strava athlete id"))
    if is_email(text):
        return Who(text.lower(), None)
    raise BadInput(f"{_shown(raw)} is neither a well-formed e-mail address nor a Strava athlete id (digits 0-9)")


def parse_json_whole_number(raw: object, name: str, *, low: int = 0, high: int = MAX_ID) -> int:
    """A whole number given as a JSON number (not `true`, not `1.0`, not a string), low to high
    inclusive. Raises BadInput naming `name`."""
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise BadInput(f"{name} must be a whole number, got {_json_shown(raw)}")
    if not low <= raw <= high:
        raise BadInput(f"{name} must be from {low} to {high}, got {_shown(raw)}")
    return raw


def _json_shown(raw: object) -> str:
    """A JSON value for a message: a scalar as JSON, quoted and cut short; a list or object by its kind."""
    if isinstance(raw, list | dict):
        return "an array" if isinstance(raw, list) else "an object"
    return _shown(json.dumps(raw))


def parse_who_value(raw: object) -> Who:
    """`WHO` from a JSON body: a string (an e-mail, or an athlete id in ASCII digits, as parse_who) or
    a JSON number that is a Strava athlete id (1 to 2^63-1; not a bool, not a fraction). Raises BadInput."""
    if isinstance(raw, str):
        return parse_who(raw)
    if isinstance(raw, int) and not isinstance(raw, bool):
        return Who(None, parse_json_whole_number(raw, "a Strava athlete id", low=1, high=MAX_ID))
    raise BadInput(f"who must be an e-mail address or a Strava athlete id, got {_json_shown(raw)}")


def parse_form(body: bytes) -> dict[str, str]:
    """An `application/x-www-form-urlencoded` body, strictly: UTF-8, valid percent-escapes (`%` and
    two hex digits), every field `name=value`. Repeated names keep the last value. Raises BadInput."""
    return dict(form_pairs(body))


def form_pairs(body: bytes) -> list[tuple[str, str]]:
    """parse_form's fields in order, repeated names kept (checkboxes). Raises BadInput."""
    try:
        text = body.decode("utf-8")
        if _BROKEN_ESCAPE.search(text):
            raise ValueError("broken percent-escape")
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text), errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise BadInput("the body is not a well-formed form (UTF-8, name=value pairs, "
                       "%-escapes of two hex digits)") from None
    return pairs


def multipart_pairs(content_type: str, body: bytes) -> list[tuple[str, str]]:
    """The text fields of a `multipart/form-data` body in order (file parts are ignored), parsed from
    bytes already read: `content_type` is the whole Content-Type header, boundary included. Raises BadInput when there is no boundary, the parts do not follow
    it, or a field is not UTF-8 text."""
    head = f"Content-Type: {content_type}\r\n\r\n".encode("latin-1", "replace")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    if not message.get_boundary() or not message.is_multipart() or message.defects:
        raise BadInput("the body is not a well-formed multipart/form-data form (boundary and parts)")
    fields: list[tuple[str, str]] = []
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str) or part.get_filename() is not None:
            continue
        try:
            content = part.get_content()
            fields.append((name, content if isinstance(content, str) else content.decode("utf-8")))
        except (LookupError, ValueError, KeyError):  # an unknown charset, bytes that are not UTF-8
            raise BadInput(f"the form field {_shown(name)} is not UTF-8 text") from None
    return fields


class _DuplicateKey(ValueError):
    pass


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise _DuplicateKey(key)
        found[key] = value
    return found


def parse_json(text: str | bytes, what: str = "the body", *, unique_keys: bool = False) -> Any:
    """Any JSON value from outside. Raises BadInput when it is not JSON, not UTF-8, or nested too
    deeply for the parser (`[` * 5000 raises RecursionError, not ValueError); with `unique_keys`,
    also when an object names a key twice (the parser keeps the last, where a proxy or another
    reader of the same request may act on the first)."""
    try:
        return json.loads(text, object_pairs_hook=_unique_pairs if unique_keys else None)
    except _DuplicateKey as exc:
        raise BadInput(f"{what} names the field {_shown(str(exc))} more than once") from None
    except (ValueError, RecursionError):
        raise BadInput(f"{what} is not valid JSON") from None


def parse_json_object(text: str | bytes, what: str = "the body", *, unique_keys: bool = False) -> dict[str, Any]:
    """A JSON object (not an array, string or number); `unique_keys` as parse_json. Raises BadInput."""
    value = parse_json(text, what, unique_keys=unique_keys)
    if not isinstance(value, dict):
        raise BadInput(f"{what} must be a JSON object")
    return value


# `2026-11-27`, `2026-11-27T14:15:00Z`, `2026-11-27T14:15:00+01:00` (seconds and fractions optional).
_ISO_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
                       r"(?:T[0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,6})?)?(?:Z|[+-][0-9]{2}:[0-9]{2}))?")


def parse_since(raw: object, name: str) -> datetime:
    """A point in time: an ISO 8601 date (midnight UTC) or date and time with `Z` or an offset (a
    time without one is refused: it would mean whatever the machine's zone is). Timezone-aware UTC.
    Raises BadInput."""
    text = raw if isinstance(raw, str) else ""
    if not _ISO_TIME.fullmatch(text):
        raise BadInput(f"{name} must be an ISO 8601 date or time in UTC, like 2026-11-27T14:15:00Z, got {_shown(raw)}")
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        # An offset can carry a time out of the calendar (year 1 to 9999) in UTC: OverflowError.
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)
    except (ValueError, OverflowError):
        raise BadInput(f"{name} is not a real date or time, got {_shown(raw)}") from None
