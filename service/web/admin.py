"""The admin JSON API under `/admin/api/`: the support desk over HTTP for automation.

Bearer `FITGLUE_ADMIN_TOKEN`, compared in constant time; 401 when wrong or missing; while the
setting is unset every route answers 404. Bodies are those of the CLI's `--json`; failures are
`{"error": CODE, "message": TEXT}`. The actor in the audit log is `admin-api`. A Connect link is
returned to the caller (that is what the route is for) and never logged; Strava tokens never leave.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from service.core.clock import iso_utc
from service.core.crypto import constant_time_equals
from service.core.inputs import parse_cursor, parse_limit, parse_row_id, parse_text
from service.core.settings import reveal
from service.desk.boundary import as_support_error
from service.desk.error_table import SupportError, refresh_failure
from service.desk.support_desk import SupportDesk, refresh_to_dict
from service.web.admin_openapi import PREFIX, openapi_document

log = logging.getLogger(__name__)

ACTOR = "admin-api"
DESK = web.AppKey("admin_desk", SupportDesk)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error_response(status: int, code: str, message: str, **extra: Any) -> web.Response:
    headers = {"Cache-Control": "no-store"}
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="fitglue-admin"'
    return web.json_response({"error": code, "message": message, **extra}, status=status, headers=headers)


def ok(body: Any) -> web.Response:
    return web.json_response(body, headers={"Cache-Control": "no-store"})


def to_body(result: Any) -> Any:
    """The `--json` shape of whatever a desk method returned."""
    if hasattr(result, "to_dict"):
        return result.to_dict()
    if isinstance(result, list | tuple):
        return [to_body(item) for item in result]
    return result


def _is_admin_path(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")


def _authorized(request: web.Request, token: str) -> bool:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and constant_time_equals(given.strip(), token)


@web.middleware
async def admin_guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Only for /admin/api paths: the off switch, the bearer check, and JSON for every failure."""
    if not _is_admin_path(request.path):
        return await handler(request)
    token = reveal(request.app[DESK].rt.settings.admin_token)
    if not token:
        return error_response(404, "not_found", "Not Found")
    if not _authorized(request, token):
        return error_response(401, "unauthorized", "a valid bearer token is required (FITGLUE_ADMIN_TOKEN)")
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return error_response(exc.status, "not_found" if exc.status == 404 else exc.reason.lower().replace(" ", "_"),
                              exc.reason)
    except Exception as exc:  # noqa: BLE001 - every failure is JSON, by the one error table
        # The desk's SupportError as it is; the route's own (a BadInput from its query) translated alike.
        translated = as_support_error(exc, request.app[DESK].rt.settings.database_url)
        if translated is None:
            log.exception("admin API: %s %s failed", request.method, request.path)
            translated = SupportError("internal", "unexpected failure")
        return support_failure(translated)


def support_failure(exc: SupportError, **extra: Any) -> web.Response:
    if exc.http_status >= 500 and exc.code != "internal":  # ours or Strava's: worth a line in the log
        log.warning("admin API: %s (%s)", exc.code, type(exc.__cause__ or exc).__name__)
    return error_response(exc.http_status, exc.code, exc.public_message, **extra)


def _desk(request: web.Request) -> SupportDesk:
    return request.app[DESK]


# --- users ---------------------------------------------------------------------------------------


async def diagnosis(request: web.Request) -> web.Response:
    result = await _desk(request).diagnose(request.match_info["who"])
    return ok(result.to_dict())


async def connect_link(request: web.Request) -> web.Response:
    issued = await _desk(request).issue_connect_link(request.match_info["email"], ACTOR)
    return ok({"url": issued.url, "expires_at": iso_utc(issued.expires_at)})


async def refresh(request: web.Request) -> web.Response:
    result = await _desk(request).refresh_now(request.match_info["email"], ACTOR)
    if not result.refreshed:
        return support_failure(refresh_failure(result), result=refresh_to_dict(result))
    return ok(refresh_to_dict(result))


async def disconnect(request: web.Request) -> web.Response:
    result = await _desk(request).disconnect(request.match_info["email"], ACTOR)
    return ok(result.to_dict())


# --- app-wide ------------------------------------------------------------------------------------


async def webhook(request: web.Request) -> web.Response:
    return ok(to_body(await _desk(request).webhook_status()))


async def webhook_register(request: web.Request) -> web.Response:
    report = await _desk(request).reregister_webhook(ACTOR)
    body = to_body(report)
    if not report.ok:
        # As `fitglue webhook register --json` prints a failure: the error plus the whole report.
        return error_response(502, "registration_failed", report.error or "registration failed", **body)
    return ok(body)


async def rotate_keys(request: web.Request) -> web.Response:
    return ok((await _desk(request).rotate_keys(ACTOR)).to_dict())


async def rate_limit(request: web.Request) -> web.Response:
    return ok(to_body(await _desk(request).rate_limit_report()))


async def jobs(request: web.Request) -> web.Response:
    return ok({"jobs": to_body(await _desk(request).list_jobs(request.query.get("state") or None))})


async def job_retry(request: web.Request) -> web.Response:
    job_id = parse_row_id(request.match_info["id"], "job id")
    return ok(to_body(await _desk(request).retry_job(job_id, ACTOR)))


async def audit(request: web.Request) -> web.Response:
    limit = parse_limit(request.query.get("limit"), "limit", default=50)
    before = parse_cursor(request.query.get("before"), "before")
    query = request.query
    entries = await _desk(request).audit_entries(
        limit, before_id=before, actor=parse_text(query.get("actor"), "actor"),
        action=parse_text(query.get("action"), "action"), target=parse_text(query.get("target"), "target"))
    next_before = entries[-1]["id"] if len(entries) == limit else None
    return ok({"entries": entries, "next_before": next_before})


async def openapi(request: web.Request) -> web.Response:
    return ok(openapi_document(request.app[DESK].rt.settings.public_url))


ROUTES: list[tuple[str, str, Handler]] = [
    ("GET", "/users/{who}/diagnosis", diagnosis),
    ("POST", "/users/{email}/connect-link", connect_link),
    ("POST", "/users/{email}/refresh", refresh),
    ("POST", "/users/{email}/disconnect", disconnect),
    ("GET", "/webhook", webhook),
    ("POST", "/webhook/register", webhook_register),
    ("POST", "/keys/rotate", rotate_keys),
    ("GET", "/rate-limit", rate_limit),
    ("GET", "/jobs", jobs),
    ("POST", "/jobs/{id}/retry", job_retry),
    ("GET", "/audit", audit),
    ("GET", "/openapi.json", openapi),
]
