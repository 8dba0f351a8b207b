"""Strava's error bodies (the Fault shape) and JSON response helpers."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from aiohttp import web


def fault(message: str, resource: str, field: str, code: str) -> dict[str, Any]:
    return {"message": message, "errors": [{"resource": resource, "field": field, "code": code}]}


def bad_request(resource: str, field: str, code: str = "invalid") -> dict[str, Any]:
    return fault("Bad Request", resource, field, code)


def authorization_error(resource: str, field: str, code: str = "invalid") -> dict[str, Any]:
    return fault("Authorization Error", resource, field, code)


APPLICATION_INVALID = authorization_error("Application", "")
ATHLETE_TOKEN_INVALID = authorization_error("Athlete", "access_token")
CLIENT_ID_INVALID = bad_request("Application", "client_id")
CODE_INVALID = bad_request("AuthorizationCode", "code")
REFRESH_TOKEN_INVALID = bad_request("RefreshToken", "refresh_token")
SCOPE_INVALID = bad_request("Authorize", "scope")
RATE_LIMIT_EXCEEDED = fault("Rate Limit Exceeded", "Application", "rate limit", "exceeded")
RECORD_NOT_FOUND = fault("Record Not Found", "Activity", "id", "invalid")
SUBSCRIPTION_EXISTS = bad_request("PushSubscription", "", "already exists")
CALLBACK_NOT_VERIFIABLE = bad_request("PushSubscription", "callback url", "not verifiable")
RESOURCE_NOT_FOUND: dict[str, Any] = {"message": "Resource Not Found"}


def scope_missing(permission: str) -> dict[str, Any]:
    """``permission`` is e.g. ``activity:read_permission`` or ``activity:write_permission``."""
    return authorization_error("AccessToken", permission, "missing")


def default_body(status: int) -> dict[str, Any]:
    """The body of an injected failure when the test gave none."""
    if status == 429:
        return RATE_LIMIT_EXCEEDED
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    return {"message": phrase, "errors": []}


def json_error(body: dict[str, Any], status: int) -> web.Response:
    return web.json_response(body, status=status)
