"""The admin API's route table entry, and the OpenAPI 3.1 document generated from the table.

Every route is one `AdminRoute` (method, path, handler, summary, the models of its query, request
and 200 body, and the error codes it can answer); `service/web/admin.py` registers the routes from
that table and serves `openapi_document(ROUTES)`. Schemas come from the pydantic models in
`service/desk/api_models.py`, and each error code's HTTP status from the one error table
(`service/desk/error_table.py`), so the document cannot drift from what the routes answer.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from service.core.inputs import MAX_ROW_ID
from service.desk.api_models import ErrorBody
from service.desk.error_table import ERRORS

PREFIX = "/admin/api"
REF = "#/components/schemas/{model}"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# What the checks in front of every route answer, by HTTP status (their codes are not the desk's).
GUARD_ERRORS: Mapping[int, str] = {
    401: "`unauthorized`: missing or wrong bearer token",
    404: "`not_found`: every admin route answers 404 while FITGLUE_ADMIN_TOKEN is unset",
    408: "`body_timeout`: the request body did not arrive within FITGLUE_BODY_READ_TIMEOUT_S",
    413: "`too_large`: the request body is larger than 256 KiB",
}
# Error codes every route may answer, whatever it does: code -> when.
EVERY_ROUTE: Mapping[str, str] = {
    "database": "the database is unavailable",
    "internal": "an unexpected failure; the service log has the details",
}
# Path parameters, by the name used in route paths: (JSON schema, description).
PATH_PARAMETERS: Mapping[str, tuple[dict[str, Any], str]] = {
    "who": ({"type": "string"}, "an e-mail address or a Strava athlete id"),
    "email": ({"type": "string", "format": "email"}, "the FitGlue user's e-mail address (any case)"),
    "id": ({"type": "integer", "minimum": 1, "maximum": MAX_ROW_ID}, "the job id, or the outbound event id"),
}


@dataclass(frozen=True)
class AdminRoute:
    """One admin API route: how it is served and how it is documented."""

    method: str
    path: str  # under PREFIX, with {name} path parameters (see PATH_PARAMETERS)
    handler: Handler
    summary: str
    body: type[BaseModel] | None  # the 200 body (None: a free-form object)
    operation_id: str
    errors: Mapping[str, str] = field(default_factory=dict)  # error code (a row of ERRORS) -> when
    error_bodies: Mapping[str, type[BaseModel]] = field(default_factory=dict)  # code -> body richer than ErrorBody
    query: type[BaseModel] | None = None  # query parameters, one per field
    request: type[BaseModel] | None = None  # a JSON request body


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": REF.format(model=model.__name__)}


def _content(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _first_line(model: type[BaseModel] | None) -> str:
    return (model.__doc__ or "OK").strip().splitlines()[0] if model is not None else "OK"


def _query_schema(prop: dict[str, Any]) -> dict[str, Any]:
    """A field's schema as a query parameter: a query string is never null, so absent is the only "none"."""
    schema = {k: v for k, v in prop.items() if k not in ("title", "description", "anyOf")}
    branches = [b for b in prop.get("anyOf", []) if b != {"type": "null"}]
    if len(branches) == 1:
        schema.update(branches[0])
    if schema.get("default", 0) is None:
        del schema["default"]
    return schema


def _parameters(route: AdminRoute) -> list[dict[str, Any]]:
    params = []
    for name, (schema, description) in PATH_PARAMETERS.items():
        if "{" + name + "}" in route.path:
            params.append({"name": name, "in": "path", "required": True, "schema": schema,
                           "description": description})
    if route.query is not None:
        props = route.query.model_json_schema(ref_template=REF)["properties"]
        for name, info in route.query.model_fields.items():
            schema = _query_schema(props[name])
            params.append({"name": name, "in": "query", "required": info.is_required(), "schema": schema,
                           **({"description": info.description} if info.description else {})})
    return params


def _error_statuses(route: AdminRoute) -> dict[int, tuple[list[str], type[BaseModel]]]:
    """HTTP status -> (what answers it, its body model); each code's status from the error table."""
    statuses: dict[int, tuple[list[str], type[BaseModel]]] = {s: ([text], ErrorBody) for s, text in GUARD_ERRORS.items()}
    for code, when in {**route.errors, **EVERY_ROUTE}.items():
        texts, model = statuses.setdefault(ERRORS[code].http_status, ([], ErrorBody))
        texts.append(f"`{code}`: {when}")
        if code in route.error_bodies:
            statuses[ERRORS[code].http_status] = (texts, route.error_bodies[code])
    return statuses


def _responses(route: AdminRoute) -> dict[str, Any]:
    ok = _ref(route.body) if route.body is not None else {"type": "object"}
    responses = {"200": _content(ok, _first_line(route.body) if route.body else "OpenAPI 3.1")}
    for status, (texts, model) in sorted(_error_statuses(route).items()):
        responses[str(status)] = _content(_ref(model), "; ".join(texts))
    responses["401"]["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}, "description": "Bearer"}}
    return responses


def _operation(route: AdminRoute) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": route.summary, "operationId": route.operation_id,
                          "responses": _responses(route)}
    if params := _parameters(route):
        op["parameters"] = params
    if route.request is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": _ref(route.request)}}}
    return op


def _models(routes: Sequence[AdminRoute]) -> list[type[BaseModel]]:
    found: dict[str, type[BaseModel]] = {"ErrorBody": ErrorBody}
    for route in routes:
        for model in (route.body, route.request, *route.error_bodies.values()):
            if model is not None:
                found[model.__name__] = model
    return list(found.values())


def openapi_document(routes: Sequence[AdminRoute], server_url: str | None = None) -> dict[str, Any]:
    """The OpenAPI 3.1 document of `routes` (paths under PREFIX), with every model's schema."""
    models = _models(routes)
    _, defs = models_json_schema([(m, "serialization") for m in models],
                                 ref_template=REF)
    schemas = dict(defs.get("$defs", {}))
    for route in routes:  # a query model is documented as parameters; only what its fields refer to is a schema
        if route.query is not None:
            schemas.update(route.query.model_json_schema(ref_template=REF).get("$defs", {}))
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(PREFIX + route.path, {})[route.method.lower()] = _operation(route)
    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "FitGlue Strava support — admin API",
            "version": "1",
            "description": "The support desk over HTTP. Bodies are those of the CLI's `--json`. Every route "
                           "needs `Authorization: Bearer <FITGLUE_ADMIN_TOKEN>`; while that setting is unset "
                           "every route answers 404. Strava tokens are never returned.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }
    if server_url:
        doc["servers"] = [{"url": server_url}]
    return doc
