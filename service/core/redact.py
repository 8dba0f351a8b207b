"""Keep secrets out of logs and error messages.

Strava's push-subscription calls carry the client secret in the query string, and tokens travel
in form bodies; anything that might end up in a log line goes through here first.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

SENSITIVE_PARAMS = frozenset(
    {"client_secret", "access_token", "refresh_token", "code", "t", "state", "verify_token", "hub.verify_token"}
)
REDACTED = "REDACTED"


def redact_url(url: str) -> str:
    """The URL with every sensitive query parameter's value replaced."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable url>"
    if not parts.query:
        return url
    pairs = [
        (key, REDACTED if key.lower() in SENSITIVE_PARAMS else value)
        for key, value in parse_qsl(parts.query, keep_blank_values=True)
    ]
    return urlunsplit(parts._replace(query=urlencode(pairs, safe=",:")))


_BEARER = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._\-]+")
_KEYVAL = re.compile(
    r"(?i)((?:client_secret|access_token|refresh_token|verify_token|signing_secret)[\"']?\s*[=:]\s*[\"']?)[^\s&\"',}]+"
)


def scrub_text(text: str, secrets: tuple[str, ...] = ()) -> str:
    """Remove bearer tokens, key=value secrets and any known secret values from free text."""
    text = _BEARER.sub(r"\1" + REDACTED, text)
    text = _KEYVAL.sub(r"\1" + REDACTED, text)
    for secret in secrets:
        if secret and len(secret) >= 6:
            text = text.replace(secret, REDACTED)
    return text
