"""The OpenAPI 3.1 document of `/admin/api`, as data. A test holds it and the router to each other."""

from __future__ import annotations

from typing import Any

from service.core.inputs import MAX_LIMIT

PREFIX = "/admin/api"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json(_ref("Error"), description)


NULLABLE_TIME = {"type": ["string", "null"], "format": "date-time"}
TIME = {"type": "string", "format": "date-time"}

_COMMON_ERRORS = {
    "401": {**_error("missing or wrong bearer token"),
            "headers": {"WWW-Authenticate": {"schema": {"type": "string"}, "description": "Bearer"}}},
    "404": _error("not found — every admin route answers 404 while FITGLUE_ADMIN_TOKEN is unset"),
    "408": _error("the request body did not arrive within FITGLUE_BODY_READ_TIMEOUT_S (error `body_timeout`)"),
    "413": _error("the request body is larger than 256 KiB (error `too_large`)"),
}
_STRAVA_ERRORS = {
    "502": _error("Strava answered with an error"),
    "503": _error("Strava is not configured, unreachable or rate-limited, or the database is unavailable"),
}

EMAIL = {"name": "email", "in": "path", "required": True, "schema": {"type": "string", "format": "email"},
         "description": "the FitGlue user's e-mail address (any case)"}

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object", "required": ["error", "message"],
        "properties": {"error": {"type": "string", "description": "stable error code"},
                       "message": {"type": "string"},
                       "result": {"description": "the operation's own result, when it ran but failed"}},
    },
    "Finding": {
        "type": "object",
        "required": ["id", "severity", "title", "detail", "remedy", "actions", "article"],
        "properties": {
            "id": {"type": "string", "enum": [
                "healthy", "unknown_user", "not_connected", "authorization_failed", "app_capacity_reached",
                "missing_permissions", "needs_reauth", "revoked", "token_refresh_failing",
                "strava_app_misconfigured", "webhook_missing", "webhook_silent", "rate_limited"]},
            "severity": {"type": "string", "enum": ["ok", "info", "warning", "error"]},
            "title": {"type": "string"},
            "detail": {"type": "string"},
            "remedy": {"type": "array", "items": {"type": "string"}},
            "actions": {"type": "array", "items": {
                "type": "string", "enum": ["send_connect_link", "reregister_webhook", "refresh_token"]}},
            "article": {"type": "string", "description": "section anchor of the help article"},
            "audience": {"type": "string", "enum": ["user", "support", "operator", "none"],
                         "description": "who must act"},
        },
    },
    "Diagnosis": {
        "type": "object", "required": ["email", "athlete_id", "status", "findings", "facts"],
        "properties": {
            "email": {"type": ["string", "null"]},
            "athlete_id": {"type": ["integer", "null"]},
            "status": {"type": "string",
                       "enum": ["unknown_user", "not_connected", "connected", "needs_reauth", "revoked"]},
            "findings": {"type": "array", "items": _ref("Finding"), "description": "most severe first"},
            "facts": {"type": "object", "description": "the observations the findings rest on; no secrets"},
        },
    },
    "ConnectLink": {
        "type": "object", "required": ["url", "expires_at"],
        "properties": {"url": {"type": "string", "format": "uri"}, "expires_at": TIME},
    },
    "Refresh": {
        "type": "object", "required": ["email", "status", "refreshed", "expires_at", "error"],
        "properties": {"email": {"type": "string"}, "status": {"type": "string"},
                       "refreshed": {"type": "boolean"}, "expires_at": NULLABLE_TIME,
                       "error": {"type": ["string", "null"]}},
    },
    "Disconnect": {
        "type": "object", "required": ["email", "status", "deauthorized", "warning"],
        "properties": {"email": {"type": "string"}, "status": {"type": "string"},
                       "deauthorized": {"type": "boolean"}, "warning": {"type": ["string", "null"]}},
    },
    "KeyRotation": {
        "type": "object", "required": ["rotated", "unreadable"],
        "properties": {"rotated": {"type": "integer"}, "unreadable": {"type": "integer"}},
    },
    "WebhookStatus": {
        "type": "object", "required": ["subscription", "callback_matches", "last_event_at", "last_registration"],
        "properties": {
            "subscription": {"type": ["object", "null"], "properties": {
                "id": {"type": "integer"}, "callback_url": {"type": "string"}}},
            "callback_matches": {"type": "boolean"},
            "last_event_at": NULLABLE_TIME,
            "last_registration": {"type": ["object", "null"], "properties": {
                "at": TIME, "outcome": {"type": "string"}, "error": {"type": ["string", "null"]}}},
        },
    },
    "WebhookRegistration": {
        "allOf": [_ref("WebhookStatus"), {
            "type": "object", "required": ["steps"],
            "properties": {"steps": {"type": "array", "items": {"type": "object"},
                                     "description": "what it checked, deleted and created"}}}],
    },
    "Window": {
        "type": "object", "required": ["limit", "usage", "resets_at"],
        "properties": {"limit": {"type": "integer"}, "usage": {"type": ["integer", "null"]}, "resets_at": TIME},
    },
    "RateLimit": {
        "type": "object", "required": ["overall", "read", "observed_at", "queued_jobs"],
        "properties": {
            "overall": {"type": "object", "properties": {"15min": _ref("Window"), "daily": _ref("Window")}},
            "read": {"type": "object", "properties": {"15min": _ref("Window"), "daily": _ref("Window")}},
            "observed_at": NULLABLE_TIME,
            "queued_jobs": {"type": "integer"},
        },
    },
    "Job": {
        "type": "object",
        "required": ["id", "kind", "state", "priority", "attempts", "run_after", "waiting_for", "last_error",
                     "user_id", "payload", "created_at", "updated_at", "finished_at"],
        "properties": {"id": {"type": "integer"}, "kind": {"type": "string"},
                       "state": {"type": "string", "enum": ["queued", "running", "done", "failed"]},
                       "priority": {"type": "integer"}, "attempts": {"type": "integer"}, "run_after": TIME,
                       "waiting_for": {"type": ["string", "null"]}, "last_error": {"type": ["string", "null"]},
                       "user_id": {"type": ["integer", "null"]}, "payload": {"type": "object"},
                       "created_at": TIME, "updated_at": NULLABLE_TIME, "finished_at": NULLABLE_TIME},
    },
    "Jobs": {"type": "object", "required": ["jobs"],
             "properties": {"jobs": {"type": "array", "items": _ref("Job"), "description": "newest first"}}},
    "AuditEntry": {
        "type": "object",
        "required": ["id", "at", "actor", "action", "target", "result", "detail", "duration_ms"],
        "properties": {"id": {"type": "integer"}, "at": TIME, "actor": {"type": "string"},
                       "action": {"type": "string"}, "target": {"type": ["string", "null"]},
                       "result": {"type": "string"}, "detail": {"type": ["string", "null"]},
                       "duration_ms": {"type": ["integer", "null"]}},
    },
    "Audit": {
        "type": "object", "required": ["entries", "next_before"],
        "properties": {"entries": {"type": "array", "items": _ref("AuditEntry")},
                       "next_before": {"type": ["integer", "null"],
                                       "description": "pass as `before` for the next (older) page"}},
    },
}


def _op(summary: str, ok: dict[str, Any], errors: dict[str, Any], *, params: list[dict[str, Any]] | None = None,
        operation_id: str) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "operationId": operation_id, "responses": {"200": ok, **errors,
                                                                                          **_COMMON_ERRORS}}
    if params:
        op["parameters"] = params
    return op


PATHS: dict[str, Any] = {
    f"{PREFIX}/users/{{who}}/diagnosis": {"get": _op(
        "Diagnose one user's Strava connection (same as `fitglue diagnose WHO --json`)",
        _json(_ref("Diagnosis"), "the diagnosis; an unknown user is a diagnosis with status unknown_user"),
        {"400": _error("WHO is neither a well-formed e-mail address nor a Strava athlete id in ASCII digits "
                       "(error `bad_argument`)")},
        params=[{"name": "who", "in": "path", "required": True, "schema": {"type": "string"},
                 "description": "an e-mail address or a Strava athlete id"}],
        operation_id="diagnoseUser")},
    f"{PREFIX}/users/{{email}}/connect-link": {"post": _op(
        "Issue a Connect link (an unknown e-mail becomes a new FitGlue user). The link goes to the caller only.",
        _json(_ref("ConnectLink"), "the link"), {"400": _error("not an e-mail address")},
        params=[EMAIL], operation_id="issueConnectLink")},
    f"{PREFIX}/users/{{email}}/refresh": {"post": _op(
        "Refresh the user's access token now",
        _json(_ref("Refresh"), "the token was refreshed"),
        {"400": _error("not an e-mail address"),
         "409": _error("nothing to refresh: not connected, needs re-authorization, revoked, or a refresh is "
                       "already running (`result` holds the refresh object)"),
         **_STRAVA_ERRORS},
        params=[EMAIL], operation_id="refreshToken")},
    f"{PREFIX}/users/{{email}}/disconnect": {"post": _op(
        "Deauthorize at Strava and forget the tokens (forgotten here even when Strava fails: see `warning`)",
        _json(_ref("Disconnect"), "disconnected"), {"400": _error("not an e-mail address")},
        params=[EMAIL], operation_id="disconnectUser")},
    f"{PREFIX}/webhook": {"get": _op(
        "The Strava push subscription and what we know of it (`fitglue webhook status --json`)",
        _json(_ref("WebhookStatus"), "the subscription's state"), dict(_STRAVA_ERRORS),
        operation_id="webhookStatus")},
    f"{PREFIX}/webhook/register": {"post": _op(
        "Check and repair the Strava push subscription (`fitglue webhook register --json`)",
        _json(_ref("WebhookRegistration"), "the subscription is in place"),
        {"502": _json({"allOf": [_ref("Error"), _ref("WebhookRegistration")]},
                      "the repair failed (error `registration_failed`, with the whole report), or Strava "
                      "answered with an error"),
         "503": _STRAVA_ERRORS["503"]},
        operation_id="registerWebhook")},
    f"{PREFIX}/keys/rotate": {"post": _op(
        "Re-encrypt every stored token under the current FITGLUE_SECRET_KEY (`fitglue db rotate-keys`); "
        "`unreadable` counts connections no configured key can read",
        _json(_ref("KeyRotation"), "the tokens were re-encrypted"), {},
        operation_id="rotateKeys")},
    f"{PREFIX}/rate-limit": {"get": _op(
        "Strava API usage against its limits, reset times and queued work (`fitglue ratelimit --json`)",
        _json(_ref("RateLimit"), "the budgets"), {}, operation_id="rateLimit")},
    f"{PREFIX}/jobs": {"get": _op(
        "The retry queue (`fitglue jobs --json`)", _json(_ref("Jobs"), "the jobs"),
        {"400": _error("unknown state")},
        params=[{"name": "state", "in": "query", "required": False, "schema": {"type": "string"},
                 "description": "only jobs in this state"}],
        operation_id="listJobs")},
    f"{PREFIX}/jobs/{{id}}/retry": {"post": _op(
        "Retry one failed or waiting job now (`fitglue jobs retry ID --json`)",
        _json(_ref("Job"), "queued again, due now"),
        {"400": _error("the id is not a whole number (ASCII digits) from 1 to 2^63-1"), "409": _error("the job cannot be retried in its state")},
        params=[{"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}],
        operation_id="retryJob")},
    f"{PREFIX}/audit": {"get": _op(
        "The audit log, newest first", _json(_ref("Audit"), "a page of entries"),
        {"400": _error("a query parameter is not valid")},
        params=[
            {"name": "limit", "in": "query", "required": False,
             "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": 50}},
            {"name": "before", "in": "query", "required": False, "schema": {"type": "integer"},
             "description": "only entries with a smaller id (the next page)"},
            {"name": "actor", "in": "query", "required": False, "schema": {"type": "string"}},
            {"name": "action", "in": "query", "required": False, "schema": {"type": "string"}},
            {"name": "target", "in": "query", "required": False, "schema": {"type": "string"}},
        ],
        operation_id="auditLog")},
    f"{PREFIX}/openapi.json": {"get": _op(
        "This document", _json({"type": "object"}, "OpenAPI 3.1"), {}, operation_id="openapi")},
}


def openapi_document(server_url: str | None = None) -> dict[str, Any]:
    from service.web.events_openapi import EVENT_SCHEMAS, event_paths  # it builds on this module's parts

    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "FitGlue Strava support — admin API",
            "version": "1",
            "description": "The support desk over HTTP. Bodies are those of the CLI's `--json`. Every route "
                           "needs `Authorization: Bearer <FITGLUE_ADMIN_TOKEN>`; while that setting is unset "
                           "every route answers 404. Strava tokens are never returned.",
        },
        "paths": {**PATHS, **event_paths(_COMMON_ERRORS)},
        "components": {
            "schemas": {**SCHEMAS, **EVENT_SCHEMAS},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }
    if server_url:
        doc["servers"] = [{"url": server_url}]
    return doc
