"""The OpenAPI paths and schemas of the support views beyond one diagnosis (issue 13): a user's
history and who is affected by a finding. Merged into `admin_openapi`'s document."""

from __future__ import annotations

from typing import Any

from service.core.inputs import MAX_LIMIT

TIME = {"type": "string", "format": "date-time"}
KINDS = ["link_issued", "oauth_attempt", "scopes_changed", "refresh_ok", "refresh_failed", "webhook_event", "job",
         "status_changed", "agent_action", "event_delivery"]
AFFECTED_FINDINGS = ["needs_reauth", "revoked", "missing_permissions", "token_refresh_failing",
                     "authorization_failed", "webhook_silent"]

SUPPORT_SCHEMAS: dict[str, Any] = {
    "HistoryEntry": {
        "type": "object", "required": ["at", "kind", "summary", "article"],
        "properties": {"at": TIME, "kind": {"type": "string", "enum": KINDS},
                       "summary": {"type": "string", "description": "what happened, in words; never a token or link"},
                       "article": {"type": "string", "description": "the help article's section anchor"}},
        "additionalProperties": {"description": "ids that help (event_id, job_id, attempt_id, audit_id, status, "
                                                "error_class, count, …)"},
    },
    "History": {
        "type": "object", "required": ["entries", "next_before"],
        "properties": {"entries": {"type": "array", "items": {"$ref": "#/components/schemas/HistoryEntry"}},
                       "next_before": {"type": ["string", "null"],
                                       "description": "pass as `before` for the next (older) page"}},
    },
    "Affected": {
        "type": "object", "required": ["finding", "count", "since", "users", "by_day"],
        "properties": {
            "finding": {"type": "string", "enum": AFFECTED_FINDINGS},
            "count": {"type": "integer", "description": "every user with the finding (the list shows the first 20)"},
            "since": {"type": ["string", "null"], "format": "date-time",
                      "description": "only users who got the finding at or after this time"},
            "users": {"type": "array", "items": {
                "type": "object", "required": ["email", "athlete_id", "since", "last_change"],
                "properties": {"email": {"type": "string"}, "athlete_id": {"type": ["integer", "null"]},
                               "since": TIME, "last_change": TIME}}},
            "by_day": {"type": "array", "items": {
                "type": "object", "required": ["date", "count"],
                "properties": {"date": {"type": "string", "format": "date"}, "count": {"type": "integer"}}}},
        },
    },
}


def support_paths(prefix: str, op: Any, json_body: Any, error: Any) -> dict[str, Any]:
    """The two GET routes, built with the document's own helpers."""
    return {
        f"{prefix}/users/{{who}}/history": {"get": op(
            "One user's history, newest first (same as `fitglue history WHO --json`)",
            json_body({"$ref": "#/components/schemas/History"}, "a page of the timeline"),
            {"400": error("WHO, limit or before is not valid (error `bad_argument`)"),
             "404": error("no such user (error `unknown_user`), or the admin API is off")},
            params=[{"name": "who", "in": "path", "required": True, "schema": {"type": "string"},
                     "description": "an e-mail address or a Strava athlete id"},
                    {"name": "limit", "in": "query", "required": False,
                     "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": 50}},
                    {"name": "before", "in": "query", "required": False, "schema": {"type": "string"},
                     "description": "a previous page's `next_before`"}],
            operation_id="userHistory")},
        f"{prefix}/affected": {"get": op(
            "Who has a finding now, counted by the day they got it (same as `fitglue affected FINDING --json`)",
            json_body({"$ref": "#/components/schemas/Affected"}, "the affected users"),
            {"400": error("unknown finding, or `since` is not an ISO 8601 time (error `bad_argument`)")},
            params=[{"name": "finding", "in": "query", "required": True,
                     "schema": {"type": "string", "enum": AFFECTED_FINDINGS}},
                    {"name": "since", "in": "query", "required": False, "schema": TIME}],
            operation_id="affectedUsers")},
    }
