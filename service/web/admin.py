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
from sqlalchemy.exc import DBAPIError, OperationalError

from service.connections.refresh import RefreshResult
from service.core.clock import iso_utc
from service.core.crypto import constant_time_equals
from service.core.inputs import BadInput, parse_cursor, parse_limit, parse_row_id, parse_text
from service.core.settings import ConfigError, reveal
from service.desk.support_desk import SupportDesk, SupportError, refresh_to_dict
from service.strava import AppCredentialsRejected, RateLimited, StravaError, Transient
from service.web.admin_openapi import PREFIX, openapi_document

log = logging.getLogger(__name__)

ACTOR = "admin-api"
DESK = web.AppKey("admin_desk", SupportDesk)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# SupportError codes whose HTTP status is not simply "the caller asked wrong" (400) / "it failed" (409).
STATUS_BY_CODE = {
    "unknown_user": 404,
    "not_found": 404,
    "unknown_job": 404,
    "bad_email": 400,
    "bad_argument": 400,
    "usage": 400,
    "configuration": 503,
    "database": 503,
    "rate_limited": 503,
    "strava_unavailable": 503,
    "strava_error": 502,
    "strava_app_misconfigured": 502,
}
# A refresh that ran but did not refresh: what it means for the caller.
REFRESH_FAILURES = {
    "not_connected": (409, "not_connected"),
    "needs_reauth": (409, "needs_reauth"),
    "grant_dead": (409, "needs_reauth"),
    "revoked": (409, "revoked"),
    "busy": (409, "busy"),
    "rate_limited": (503, "rate_limited"),
    "transient": (503, "strava_unavailable"),
    "app_credentials_rejected": (502, "strava_app_misconfigured"),
}


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


def _strava_failure(exc: StravaError) -> web.Response:
    if isinstance(exc, RateLimited):
        return error_response(503, "rate_limited", "Strava's rate limit is used up; try again after the window resets")
    if isinstance(exc, AppCredentialsRejected):
        return error_response(502, "strava_app_misconfigured", exc.summary)
    if isinstance(exc, Transient):
        return error_response(503, "strava_unavailable", exc.summary)
    return error_response(502, "strava_error", exc.summary)


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
    except SupportError as exc:
        status = STATUS_BY_CODE.get(exc.code, 400 if exc.exit_code == 2 else 409)
        return error_response(status, exc.code, str(exc))
    except BadInput as exc:  # BadEmail too: "bad_email"
        return error_response(400, exc.code, str(exc))
    except ConfigError as exc:
        return error_response(503, "configuration", str(exc))
    except StravaError as exc:
        return _strava_failure(exc)
    except (OperationalError, DBAPIError) as exc:
        log.warning("admin API: database unavailable (%s)", type(exc.orig or exc).__name__)
        return error_response(503, "database", "the database is unavailable")
    except Exception:
        log.exception("admin API: %s %s failed", request.method, request.path)
        return error_response(500, "internal", "the operation failed unexpectedly; see the service log")


def _desk(request: web.Request) -> SupportDesk:
    return request.app[DESK]


# --- users ---------------------------------------------------------------------------------------


async def diagnosis(request: web.Request) -> web.Response:
    result = await _desk(request).diagnose(request.match_info["who"])
    return ok(result.to_dict())


async def connect_link(request: web.Request) -> web.Response:
    issued = await _desk(request).issue_connect_link(request.match_info["email"], ACTOR)
    return ok({"url": issued.url, "expires_at": iso_utc(issued.expires_at)})


def _refresh_failure(result: RefreshResult) -> web.Response:
    key = result.error_kind or result.status
    status, code = REFRESH_FAILURES.get(key, REFRESH_FAILURES.get(result.status, (502, "refresh_failed")))
    return error_response(status, code, f"{result.email}: {result.error or result.status}",
                          result=refresh_to_dict(result))


async def refresh(request: web.Request) -> web.Response:
    result = await _desk(request).refresh_now(request.match_info["email"], ACTOR)
    if not result.refreshed:
        return _refresh_failure(result)
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
