"""The admin JSON API under `/admin/api/`: the support desk over HTTP for automation.

Bearer `FITGLUE_ADMIN_TOKEN`, compared in constant time; 401 when wrong or missing; while the
setting is unset every route answers 404. Bodies are those of the CLI's `--json`; failures are
`{"error": CODE, "message": TEXT}`. The actor in the audit log is `admin-api`. A Connect link is
returned to the caller (that is what the route is for) and never logged; Strava tokens never leave.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from service.core.crypto import constant_time_equals
from service.core.inputs import parse_json_object, parse_row_id
from service.core.settings import reveal
from service.desk.api_models import (
    AuditBody,
    Body,
    ConnectLinkBody,
    DiagnosisBody,
    DisconnectBody,
    JobBody,
    JobsBody,
    KeyRotationBody,
    RateLimitBody,
    RefreshBody,
    RefreshFailureBody,
    RegistrationFailureBody,
    WebhookRegistrationBody,
    WebhookStatusBody,
)
from service.desk.api_queries import AuditQuery, JobsQuery
from service.desk.boundary import as_support_error
from service.desk.error_table import SupportError, refresh_failure
from service.desk.event_models import (
    EventsBody,
    EventsQuery,
    EventsReplayedBody,
    EventsRetriedBody,
    ReplayRequest,
)
from service.desk.support_desk import SupportDesk
from service.desk.support_view_models import AffectedBody, AffectedQuery, HistoryBody, HistoryQuery
from service.web.admin_openapi import PREFIX, AdminRoute, Handler, openapi_document

log = logging.getLogger(__name__)

ACTOR = "admin-api"
DESK = web.AppKey("admin_desk", SupportDesk)

def error_response(status: int, code: str, message: str, **extra: Any) -> web.Response:
    headers = {"Cache-Control": "no-store"}
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="fitglue-admin"'
    return web.json_response({"error": code, "message": message, **extra}, status=status, headers=headers)


def ok(body: Body) -> web.Response:
    """200 with the body's JSON: the same model the CLI's `--json` prints."""
    return web.json_response(body.to_json(), headers={"Cache-Control": "no-store"})


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
    return ok(DiagnosisBody.of(await _desk(request).diagnose(request.match_info["who"])))


async def history(request: web.Request) -> web.Response:
    q = HistoryQuery.parse(request.query)
    return ok(HistoryBody.of(await _desk(request).history.page(request.match_info["who"], q.limit, q.before)))


async def affected(request: web.Request) -> web.Response:
    q = AffectedQuery.parse(request.query)
    return ok(AffectedBody.of(await _desk(request).affected.report(q.finding, q.since)))


async def connect_link(request: web.Request) -> web.Response:
    return ok(ConnectLinkBody.of(await _desk(request).issue_connect_link(request.match_info["email"], ACTOR)))


async def refresh(request: web.Request) -> web.Response:
    result = await _desk(request).refresh_now(request.match_info["email"], ACTOR)
    if not result.refreshed:
        return support_failure(refresh_failure(result), result=RefreshBody.of(result).to_json())
    return ok(RefreshBody.of(result))


async def disconnect(request: web.Request) -> web.Response:
    return ok(DisconnectBody.of(await _desk(request).disconnect(request.match_info["email"], ACTOR)))


# --- app-wide ------------------------------------------------------------------------------------


async def webhook(request: web.Request) -> web.Response:
    return ok(WebhookStatusBody.of(await _desk(request).webhooks.webhook_status()))


async def webhook_register(request: web.Request) -> web.Response:
    report = await _desk(request).webhooks.reregister_webhook(ACTOR)
    if not report.ok:
        # As `fitglue webhook register --json` prints a failure: the error plus the whole report.
        failure = RegistrationFailureBody.failed(report).to_json()
        return error_response(502, failure.pop("error"), failure.pop("message"), **failure)
    return ok(WebhookRegistrationBody.of(report))


async def rotate_keys(request: web.Request) -> web.Response:
    return ok(KeyRotationBody.of(await _desk(request).rotate_keys(ACTOR)))


async def rate_limit(request: web.Request) -> web.Response:
    return ok(RateLimitBody.of(await _desk(request).webhooks.rate_limit_report()))


async def jobs(request: web.Request) -> web.Response:
    return ok(JobsBody.of(await _desk(request).webhooks.list_jobs(JobsQuery.parse(request.query).state)))


async def job_retry(request: web.Request) -> web.Response:
    job_id = parse_row_id(request.match_info["id"], "job id")
    return ok(JobBody.of(await _desk(request).webhooks.retry_job(job_id, ACTOR)))


# --- outbound events (README "Outbound events"; the bodies of `fitglue events … --json`) -------------


async def events(request: web.Request) -> web.Response:
    q = EventsQuery.parse(request.query)
    return ok(EventsBody.of(await _desk(request).events.list_events(state=q.state, athlete_id=q.athlete, limit=q.limit,
                                                             before=q.before)))


async def event_retry(request: web.Request) -> web.Response:
    event_id = parse_row_id(request.match_info["id"], "event id")
    return ok(EventsRetriedBody.of(await _desk(request).events.retry_event(event_id, ACTOR)))


async def events_retry_failed(request: web.Request) -> web.Response:
    return ok(EventsRetriedBody.of(await _desk(request).events.retry_failed_events(ACTOR)))


async def events_replay(request: web.Request) -> web.Response:
    replay = ReplayRequest.parse(parse_json_object(await request.read(), unique_keys=True) if request.body_exists else {})
    return ok(EventsReplayedBody.of(await _desk(request).events.replay_events(replay.since, replay.athlete_id, ACTOR)))


async def audit(request: web.Request) -> web.Response:
    q = AuditQuery.parse(request.query)
    entries = await _desk(request).audit_entries(q.limit, before_id=q.before, actor=q.actor, action=q.action,
                                                 target=q.target)
    return ok(AuditBody.page(entries, q.limit))


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi_document(ROUTES, request.app[DESK].rt.settings.public_url),
                             headers={"Cache-Control": "no-store"})


_BAD_EMAIL = {"bad_email": "not an e-mail address"}
_STRAVA = {"configuration": "Strava is not configured", "strava_unavailable": "Strava did not answer, or not as expected"}
# A refresh that ran but did not refresh: the error plus the refresh object.
_REFRESH_RAN = {"not_connected": "the user has not connected Strava", "revoked": "the athlete revoked access",
                "needs_reauth": "Strava no longer accepts the grant: the user must connect again",
                "busy": "another refresh of this token is running", "rate_limited": "Strava's rate limit is used up",
                "strava_unavailable": "Strava did not answer", "refresh_failed": "the refresh failed otherwise",
                "strava_app_misconfigured": "Strava rejected the app's own credentials"}
# The admin API, one entry per route: adding a route with its model is one entry here.
ROUTES: list[AdminRoute] = [
    AdminRoute("GET", "/users/{who}/diagnosis", diagnosis, "Diagnose one user's Strava connection (same as "
               "`fitglue diagnose WHO --json`); an unknown user is a diagnosis with status unknown_user",
               DiagnosisBody, "diagnoseUser", {"bad_argument": "WHO is neither a well-formed e-mail address nor "
                                                               "a Strava athlete id in ASCII digits"}),
    AdminRoute("GET", "/users/{who}/history", history, "One user's history, newest first: links, attempts, "
               "scope and status changes, refreshes, webhook events, jobs, agent actions (same as `fitglue history "
               "WHO --json`)", HistoryBody, "userHistory",
               {"bad_argument": "WHO, limit or before is not valid", "unknown_user": "no such user"},
               query=HistoryQuery),
    AdminRoute("GET", "/affected", affected, "Who has a finding now, counted by the day they got it (same as "
               "`fitglue affected FINDING --json`)", AffectedBody, "affectedUsers",
               {"bad_argument": "unknown finding, or `since` is not an ISO 8601 time"}, query=AffectedQuery),
    AdminRoute("POST", "/users/{email}/connect-link", connect_link, "Issue a Connect link (an unknown e-mail "
               "becomes a new FitGlue user). The link goes to the caller only.", ConnectLinkBody,
               "issueConnectLink", _BAD_EMAIL),
    AdminRoute("POST", "/users/{email}/refresh", refresh, "Refresh the user's access token now", RefreshBody,
               "refreshToken", {**_BAD_EMAIL, "unknown_user": "no FitGlue user with this e-mail", **_STRAVA,
                                **_REFRESH_RAN},
               error_bodies=dict.fromkeys(_REFRESH_RAN, RefreshFailureBody)),
    AdminRoute("POST", "/users/{email}/disconnect", disconnect, "Deauthorize at Strava and forget the tokens "
               "(forgotten here even when Strava fails: see `warning`)", DisconnectBody, "disconnectUser",
               _BAD_EMAIL),
    AdminRoute("GET", "/webhook", webhook, "The Strava push subscription and what we know of it "
               "(`fitglue webhook status --json`)", WebhookStatusBody, "webhookStatus", _STRAVA),
    AdminRoute("POST", "/webhook/register", webhook_register, "Check and repair the Strava push subscription "
               "(`fitglue webhook register --json`)", WebhookRegistrationBody, "registerWebhook",
               {"registration_failed": "the repair failed; the body holds the whole report",
                "strava_error": "Strava answered with an error", **_STRAVA},
               error_bodies={"registration_failed": RegistrationFailureBody}),
    AdminRoute("POST", "/keys/rotate", rotate_keys, "Re-encrypt every stored token under the current "
               "FITGLUE_SECRET_KEY (`fitglue db rotate-keys`); `unreadable` counts connections no configured "
               "key can read", KeyRotationBody, "rotateKeys"),
    AdminRoute("GET", "/rate-limit", rate_limit, "Strava API usage against its limits, reset times and queued "
               "work (`fitglue ratelimit --json`)", RateLimitBody, "rateLimit"),
    AdminRoute("GET", "/jobs", jobs, "The retry queue (`fitglue jobs --json`)", JobsBody, "listJobs",
               {"bad_state": "unknown state"}, query=JobsQuery),
    AdminRoute("POST", "/jobs/{id}/retry", job_retry, "Retry one failed or waiting job now "
               "(`fitglue jobs retry ID --json`)", JobBody, "retryJob",
               {"bad_argument": "the id is not a whole number (ASCII digits) from 1 to 2^31-1",
                "not_found": "no such job", "not_retryable": "the job cannot be retried in its state"}),
    AdminRoute("GET", "/events", events, "Outbound events for FitGlue's other services (`fitglue events --json`)",
               EventsBody, "listEvents", {"bad_state": "unknown state", "bad_argument": "a query parameter is not "
                                                                                          "valid"}, query=EventsQuery),
    AdminRoute("POST", "/events/{id}/retry", event_retry, "Send a parked (or waiting) event again now "
               "(`fitglue events retry ID --json`)", EventsRetriedBody, "retryEvent",
               {"bad_argument": "the id is not a whole number (ASCII digits) from 1 to 2^31-1",
                "not_found": "no such event"}),
    AdminRoute("POST", "/events/retry-failed", events_retry_failed, "Send every parked event again now, each with "
               "a fresh retry schedule (`fitglue events retry --failed --json`)", EventsRetriedBody,
               "retryFailedEvents"),
    AdminRoute("POST", "/events/replay", events_replay, "Send the delivered events since a time again, with new "
               "webhook-ids and `data.replay_of` (`fitglue events replay --since ISO --json`)", EventsReplayedBody,
               "replayEvents", {"bad_argument": "the body is not `{\"since\", \"athlete_id\"}` as described",
                                "configuration": "outbound events are off (FITGLUE_EVENTS_URL is unset)"},
               request=ReplayRequest),
    AdminRoute("GET", "/audit", audit, "The audit log, newest first", AuditBody, "auditLog",
               {"bad_argument": "a query parameter is not valid"}, query=AuditQuery),
    AdminRoute("GET", "/openapi.json", openapi, "This document", None, "openapi"),
]
