"""Strava's push events: strict parsing of the POST body (pure, no I/O).

Field rules (reference §2.4): `object_type` "activity"|"athlete", `aspect_type`
"create"|"update"|"delete", integer ids and `event_time`, `updates` an object whose values are
strings ("false", not false). Anything else is a 400 and changes nothing.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from service.core.inputs import BadInput, parse_json

OBJECT_TYPES = frozenset({"activity", "athlete"})
ASPECT_TYPES = frozenset({"create", "update", "delete"})
INT_FIELDS = ("object_id", "owner_id", "subscription_id", "event_time")
MAX_ID = 2**63 - 1
# One encoder: json.dumps with options builds a new one on every call.
_UPDATES_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"))


class BadEvent(ValueError):
    """The body is not a Strava event; the message says what is wrong (safe to show)."""


@dataclass(frozen=True)
class StravaEvent:
    object_type: str
    object_id: int
    aspect_type: str
    owner_id: int
    subscription_id: int
    event_time: int
    updates: dict[str, str]
    # Derived once when the event is made (the intake needs both several times per event on its hot
    # path; functools.cached_property takes a lock on every first read in Python 3.11).
    updates_json: str = field(init=False, repr=False, compare=False)
    dedupe_key: str = field(init=False, repr=False, compare=False)
    """Equal for Strava's redeliveries of one event (the very same body), distinct otherwise."""

    def __post_init__(self) -> None:
        updates_json = _UPDATES_JSON.encode(self.updates) if self.updates else "{}"
        object.__setattr__(self, "updates_json", updates_json)
        object.__setattr__(self, "dedupe_key", (
            f"{self.subscription_id}:{self.object_type}:{self.object_id}:{self.aspect_type}:"
            f"{self.event_time}:{_updates_digest(updates_json)}"))

    @property
    def is_deauthorization(self) -> bool:
        # Key on the athlete object and the string "false", not on aspect_type (reference §2.4).
        return self.object_type == "athlete" and self.updates.get("authorized") == "false"


@lru_cache(maxsize=64)
def _updates_digest(updates_json: str) -> str:
    # Nearly every event has no updates or one of a few small ones: the same few digests, memoised.
    return hashlib.sha256(updates_json.encode()).hexdigest()[:16]


def _encodable(text: str) -> bool:
    """False for lone surrogates (JSON allows "\\ud800"; UTF-8 and the database do not)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in text  # PostgreSQL text cannot hold NUL


def parse_event(raw: bytes) -> StravaEvent:
    try:
        body: Any = parse_json(raw)
    except BadInput as exc:
        raise BadEvent(str(exc)) from None
    if not isinstance(body, dict):
        raise BadEvent("the body must be a JSON object")
    missing = [name for name in ("object_type", "aspect_type", *INT_FIELDS) if name not in body]
    if missing:
        raise BadEvent("missing field(s): " + ", ".join(missing))
    numbers: dict[str, int] = {}
    for name in INT_FIELDS:
        value = body[name]
        # bool is an int in Python; JSON true is not an id.
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_ID:
            raise BadEvent(f"{name} must be a non-negative integer")
        numbers[name] = value
    # isinstance first: a JSON object or array here is unhashable and must be a 400, not a crash.
    if not isinstance(body["object_type"], str) or body["object_type"] not in OBJECT_TYPES:
        raise BadEvent("object_type must be 'activity' or 'athlete'")
    if not isinstance(body["aspect_type"], str) or body["aspect_type"] not in ASPECT_TYPES:
        raise BadEvent("aspect_type must be 'create', 'update' or 'delete'")
    updates = body.get("updates", {})
    if updates is None:
        updates = {}
    if not isinstance(updates, dict) or len(updates) > 20:
        raise BadEvent("updates must be an object")
    clean: dict[str, str] = {}
    for key, value in updates.items():
        if isinstance(value, dict | list) or len(str(key)) > 100:
            raise BadEvent("updates values must be plain values")
        # Strava sends strings; a JSON boolean is kept in Strava's spelling so "false" stays "false".
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)[:300]
        if not _encodable(str(key)) or not _encodable(text):
            raise BadEvent("updates must be valid UTF-8 text")
        clean[str(key)] = text
    return StravaEvent(body["object_type"], numbers["object_id"], body["aspect_type"], numbers["owner_id"],
                       numbers["subscription_id"], numbers["event_time"], clean)
