"""The admin API's outbound-event routes in the OpenAPI document (merged by
`admin_openapi.openapi_document`, which imports this module when it builds the document): the bodies
of `fitglue events … --json` (README "Outbound events")."""

from __future__ import annotations

from typing import Any

from service.core.inputs import MAX_LIMIT
from service.web.admin_openapi import NULLABLE_TIME as _NULLABLE_TIME
from service.web.admin_openapi import PREFIX, _error, _json, _ref
from service.web.admin_openapi import TIME as _TIME

EVENT_SCHEMAS: dict[str, Any] = {
    "OutboundEvent": {
        "type": "object",
        "required": ["id", "type", "athlete_id", "state", "attempts", "next_attempt_at", "last_error", "created_at",
                     "delivered_at"],
        "properties": {
            "id": {"type": "integer"},
            "webhook_id": {"type": "string", "description": "the `webhook-id` header it is sent with"},
            "type": {"type": "string"}, "athlete_id": {"type": ["integer", "null"]},
            "state": {"type": "string", "enum": ["pending", "delivered", "failed"]},
            "attempts": {"type": "integer"}, "next_attempt_at": _NULLABLE_TIME,
            "last_error": {"type": ["string", "null"]}, "created_at": _TIME, "delivered_at": _NULLABLE_TIME,
            "replay_of": {"type": ["string", "null"], "description": "the original webhook-id of a replay"}},
    },
    "OutboundEvents": {
        "type": "object", "required": ["events", "next_before"],
        "properties": {"events": {"type": "array", "items": _ref("OutboundEvent"), "description": "newest first"},
                       "next_before": {"type": ["integer", "null"],
                                       "description": "pass as `before` for the next (older) page"}},
    },
    "Retried": {"type": "object", "required": ["retried"], "properties": {"retried": {"type": "integer"}}},
    "Replayed": {"type": "object", "required": ["replayed"], "properties": {"replayed": {"type": "integer"}}},
    "ReplayRequest": {
        "type": "object", "required": ["since"], "additionalProperties": False,
        "properties": {"since": {"type": "string", "format": "date-time"},
                       "athlete_id": {"type": ["integer", "string", "null"], "description": "a Strava athlete id"}},
    },
}


def _op(summary: str, ok: dict[str, Any], errors: dict[str, Any], common: dict[str, Any], operation_id: str,
        **extra: Any) -> dict[str, Any]:
    return {"summary": summary, "operationId": operation_id, "responses": {"200": ok, **errors, **common}, **extra}


def event_paths(common_errors: dict[str, Any]) -> dict[str, Any]:
    """The four event routes, with the admin API's common errors (401, 404, 503)."""
    return {
        f"{PREFIX}/events": {"get": _op(
            "Outbound events for FitGlue's other services (`fitglue events --json`)",
            _json(_ref("OutboundEvents"), "a page of events"), {"400": _error("a query parameter is not valid")},
            common_errors, "listEvents", parameters=[
                {"name": "state", "in": "query", "required": False,
                 "schema": {"type": "string", "enum": ["pending", "delivered", "failed"]}},
                {"name": "athlete", "in": "query", "required": False, "schema": {"type": "integer"}},
                {"name": "limit", "in": "query", "required": False,
                 "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": 100}},
                {"name": "before", "in": "query", "required": False, "schema": {"type": "integer"}}])},
        f"{PREFIX}/events/{{id}}/retry": {"post": _op(
            "Send a parked (or waiting) event again now (`fitglue events retry ID --json`)",
            _json(_ref("Retried"), "how many became due"), {"400": _error("the id is not a whole number")},
            common_errors, "retryEvent",
            parameters=[{"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}])},
        f"{PREFIX}/events/retry-failed": {"post": _op(
            "Send every parked event again now (`fitglue events retry --failed --json`)",
            _json(_ref("Retried"), "how many became due"), {}, common_errors, "retryFailedEvents")},
        f"{PREFIX}/events/replay": {"post": _op(
            "Send delivered events again with new webhook-ids and `data.replay_of` "
            "(`fitglue events replay --since ISO --json`)",
            _json(_ref("Replayed"), "how many were queued again"),
            {"400": _error("the body is not `{\"since\", \"athlete_id\"}`")}, common_errors, "replayEvents",
            requestBody={"required": True, "content": {"application/json": {"schema": _ref("ReplayRequest")}}})},
    }
