"""Calling Slack's Web API: every way a call can fail becomes one `SlackCallFailed` that says what
happened, in words an agent can act on.

slack_sdk reports a failed call in several shapes, and each caller used to guess a few of them:
- `SlackApiError` for `ok: false` and for any HTTP status but 200. Its `response` is an
  `AsyncSlackResponse` whose `data` is a dict (JSON), an empty dict (a non-JSON content type such as a
  proxy's HTML page) or a plain `str` (a `text/plain` body, where `response.get(...)` itself raises
  AttributeError) — or, when a JSON content type carries a body that does not parse, the raw aiohttp
  response, which has no `data` at all;
- an AttributeError or ValueError from slack_sdk's own validation when a 200 answer is plain text;
- aiohttp's `ClientError` / `OSError` when Slack cannot be reached;
- nothing, for a call that never answers: the service's HTTP session has no overall timeout, so each
  call here is bounded by FITGLUE_SLACK_TIMEOUT_S.

`call()` is the one place that knows all this; `classify()` is the pure part. A rate-limited call is
not retried here: the caller tells the agent (with Slack's Retry-After) and delivers what it can
another way, so nobody waits on a Slack back-off.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError

# The failure shapes.
REFUSED = "refused"  # Slack answered ok: false with an error code
RATE_LIMITED = "rate_limited"  # 429 (or error "ratelimited"), usually with Retry-After
SERVER_ERROR = "server_error"  # 5xx
NOT_JSON = "not_json"  # an answer that is not a Slack API answer (a proxy's page, a broken body)
TIMEOUT = "timeout"  # no answer within FITGLUE_SLACK_TIMEOUT_S
UNREACHABLE = "unreachable"  # connection refused, reset, DNS, TLS …

SHAPES = (REFUSED, RATE_LIMITED, SERVER_ERROR, NOT_JSON, TIMEOUT, UNREACHABLE)

# Slack error codes whose cure is not obvious from the code itself.
_BAD_TOKEN = "SLACK_BOT_TOKEN is not (or no longer) valid: reinstall the app and set the new token"
ERROR_HINTS = {
    "invalid_auth": _BAD_TOKEN,
    "not_authed": _BAD_TOKEN,
    "token_revoked": _BAD_TOKEN,
    "token_expired": _BAD_TOKEN,
    "account_inactive": _BAD_TOKEN,
    "missing_scope": "the app lacks a permission this needs: reinstall it from `fitglue manifest`",
    "not_in_channel": "invite the bot to the channel",
    "plan_upgrade_required": "user groups need a paid Slack plan; list user IDs in FITGLUE_SUPPORT_SLACK_IDS",
    "no_such_subteam": "no such user group: check FITGLUE_SUPPORT_SLACK_IDS",
}

_MAX_RETRY_AFTER_DIGITS = 6


@dataclass(eq=False)  # not frozen: Python sets __traceback__ and __context__ on exceptions
class SlackCallFailed(Exception):
    """A Web API call that did not succeed. `method` is Slack's name (`chat.postMessage`), `shape`
    one of SHAPES, `error` Slack's error code when it sent one, `status` the HTTP status when an answer
    arrived, `retry_after_s` Slack's Retry-After in seconds, `timeout_s` the bound that ran out."""

    method: str
    shape: str
    error: str | None = None
    status: int | None = None
    retry_after_s: int | None = None
    timeout_s: float | None = None
    cause: str | None = None  # the exception class name, for UNREACHABLE

    def __str__(self) -> str:
        return self.reason

    @property
    def reason(self) -> str:
        """What happened, in plain words. Carries no request data (no e-mail, no link, no token)."""
        status = f"HTTP {self.status}" if self.status is not None else "no HTTP status"
        if self.shape == REFUSED:
            hint = ERROR_HINTS.get(self.error or "")
            return f"Slack refused {self.method} with `{self.error}`" + (f" ({hint})" if hint else "")
        if self.shape == RATE_LIMITED:
            wait = f"{self.retry_after_s} s" if self.retry_after_s is not None else "a minute"
            return f"Slack is rate-limiting {self.method}; try again in {wait}"
        if self.shape == SERVER_ERROR:
            return f"Slack had a server error answering {self.method} ({status}); try again in a few minutes"
        if self.shape == NOT_JSON:
            return (f"{self.method} got an answer that is not from Slack's API ({status}, not Slack's JSON); "
                    "a proxy between FitGlue and Slack may be in the way")
        if self.shape == TIMEOUT:
            return f"Slack did not answer {self.method} within {self.timeout_s:g} s"
        return (f"FitGlue could not reach Slack for {self.method} ({self.cause or 'connection failed'}); "
                "check the network and SLACK_API_URL")


def retry_after(headers: Mapping[str, str] | None) -> int | None:
    """Slack's Retry-After header in whole seconds (ASCII digits only), or None."""
    raw = (headers or {}).get("Retry-After")
    if raw is None:
        return None
    raw = str(raw).strip()
    if raw.isascii() and raw.isdigit() and len(raw) <= _MAX_RETRY_AFTER_DIGITS:
        return int(raw)
    return None


def classify(method: str, status: int | None, data: Any, headers: Mapping[str, str] | None) -> SlackCallFailed:
    """An answer that was not a success → its shape. `data` is whatever slack_sdk parsed: a dict,
    an empty dict, a str, or None when there is nothing usable."""
    error = data.get("error") if isinstance(data, dict) else None
    error = str(error) if error is not None else None
    if status == 429 or error == "ratelimited":
        return SlackCallFailed(method, RATE_LIMITED, error, status, retry_after(headers))
    if status is not None and status >= 500:
        return SlackCallFailed(method, SERVER_ERROR, error, status)
    if isinstance(data, dict) and data:
        return SlackCallFailed(method, REFUSED, error or "no_error_given", status)
    return SlackCallFailed(method, NOT_JSON, None, status)


def _from_api_error(method: str, exc: SlackApiError) -> SlackCallFailed:
    response = exc.response
    if hasattr(response, "status_code"):  # AsyncSlackResponse
        return classify(method, response.status_code, getattr(response, "data", None),
                        getattr(response, "headers", None))
    # The raw aiohttp response: slack_sdk could not parse a body that claimed to be JSON.
    return classify(method, getattr(response, "status", None), None, getattr(response, "headers", None))


async def call(method: str, request: Awaitable[Any], timeout_s: float) -> dict[str, Any]:
    """Await one slack_sdk Web API call (`client.chat_postMessage(...)`) and return Slack's answer as
    a dict (`ok` is true). Raises SlackCallFailed for every other outcome; `method` names the call in
    the failure's words."""
    try:
        async with asyncio.timeout(timeout_s):
            response = await request
    except SlackApiError as exc:
        raise _from_api_error(method, exc) from None
    except TimeoutError:  # before OSError: TimeoutError is one
        raise SlackCallFailed(method, TIMEOUT, timeout_s=timeout_s) from None
    except (aiohttp.ClientError, OSError) as exc:
        raise SlackCallFailed(method, UNREACHABLE, cause=type(exc).__name__) from None
    except (AttributeError, ValueError):
        # slack_sdk's validation of a 200 whose body is plain text: `data` is a str, not a dict.
        raise SlackCallFailed(method, NOT_JSON, status=200) from None
    data = getattr(response, "data", response)
    if not isinstance(data, dict):
        raise SlackCallFailed(method, NOT_JSON, status=getattr(response, "status_code", None))
    return data
