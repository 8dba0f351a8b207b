"""The rules of the hand-off settings (README "Outbound events", "Access-token endpoint"), as
annotated types that `service.core.settings.Settings` declares its fields with. Messages name the
variable, never a secret's value."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, BeforeValidator, SecretStr
from pydantic_settings import NoDecode

from service.core.inputs import parse_whole_number

# The longest wait between two delivery attempts: 30 days. Longer ones only delay parking (and the
# alert), and one beyond the calendar (about 10^11 s) made every settle raise OverflowError: the
# event was sent again after each lease, never parked.
MAX_RETRY_WAIT_S = 30 * 86400
# The Standard Webhooks specification asks for 24 to 64 random bytes; at least 16 are accepted.
MIN_SECRET_BYTES = 16


def _retry_schedule(value: object) -> object:
    """`5, 300,1800` -> (5, 300, 1800): whole seconds, each at least 1. A sequence set in code passes
    through to the same check."""
    name = "FITGLUE_EVENTS_RETRY_SCHEDULE_S"
    parts = tuple(p.strip() for p in value.split(",") if p.strip()) if isinstance(value, str) else value
    if not isinstance(parts, tuple | list):
        return parts
    if not parts:
        raise ValueError(f"{name} needs at least one number of seconds")
    return tuple(parse_whole_number(p, name, low=1, high=MAX_RETRY_WAIT_S) if isinstance(p, str) else p for p in parts)


def _http_url(value: str) -> str:
    """An http(s) URL with a host (and a valid port, no whitespace), kept exactly as given: a trailing
    slash is part of the receiver's path. Refused here, at start-up, rather than at every attempt."""
    try:
        parts = urlsplit(value)
        usable = bool(parts.hostname) and (parts.port is None or parts.port > 0)  # .port raises past 65535
    except ValueError:  # an unclosed IPv6 bracket, a port that is not a number
        usable = False
    if not usable or not value.startswith(("http://", "https://")) or any(ch.isspace() for ch in value):
        raise ValueError("FITGLUE_EVENTS_URL must be an http:// or https:// URL with a host, "
                         "like https://fitglue.example/strava-events")
    return value


def _standard_webhooks_secret(value: SecretStr) -> SecretStr:
    """`whsec_` followed by base64 of the key."""
    text = value.get_secret_value()
    try:
        key = base64.b64decode(text.removeprefix("whsec_"), validate=True) if text.startswith("whsec_") else b""
    except (binascii.Error, ValueError):
        key = b""
    if len(key) < MIN_SECRET_BYTES:
        raise ValueError(f"FITGLUE_EVENTS_SECRET must be `whsec_` followed by base64 of at least {MIN_SECRET_BYTES} "
                         "bytes (`fitglue init` writes one)")
    return value


# The bearer keys (FITGLUE_TOKEN_API_KEY guards every user's Strava access token, FITGLUE_ADMIN_TOKEN
# the admin API: connect links, disconnects, erasure) are checked per request and a wrong key costs a
# caller nothing but a 401, so a short key could simply be guessed.
MIN_TOKEN_API_KEY_CHARS = 24


def _bearer_key(variable: str) -> Callable[[SecretStr], SecretStr]:
    def check(value: SecretStr) -> SecretStr:
        """Empty (that API off), or at least MIN_TOKEN_API_KEY_CHARS characters with no surrounding
        whitespace (a key with a stray space from .env would refuse every call with a 401)."""
        text = value.get_secret_value()
        if text and (len(text) < MIN_TOKEN_API_KEY_CHARS or text != text.strip()):
            raise ValueError(f"{variable} must be at least {MIN_TOKEN_API_KEY_CHARS} characters with no "
                             "spaces around it, for example from `python -c 'import secrets; "
                             "print(secrets.token_urlsafe(32))'`")
        return value

    return check


RetrySchedule = Annotated[tuple[int, ...], NoDecode, BeforeValidator(_retry_schedule)]
EventsUrl = Annotated[str, AfterValidator(_http_url)]
EventsSecret = Annotated[SecretStr, AfterValidator(_standard_webhooks_secret)]
TokenApiKey = Annotated[SecretStr, AfterValidator(_bearer_key("FITGLUE_TOKEN_API_KEY"))]
AdminToken = Annotated[SecretStr, AfterValidator(_bearer_key("FITGLUE_ADMIN_TOKEN"))]
