"""The admin API through the real app: auth, the off switch, shapes, errors, and the OpenAPI document.

Every response a test sees goes through `Api.call`, which also checks that the OpenAPI document
lists that status for that route and method, and that the body validates against the schema the
document gives for it (the document is generated from the response models).
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import timedelta

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate as validate_openapi
from sqlalchemy import select

from service.app.factory import build_app
from service.db.models import AuditEntry, Job, OutboundEvent
from service.desk.error_table import ERRORS
from service.desk.support_desk import SupportDesk
from service.desk.support_view_models import HistoryBody
from service.web.admin import ROUTES
from service.web.admin_openapi import PREFIX, openapi_document
from tests.events.conftest import EVENTS_SECRET
from tests.flows import connect

TOKEN = "admin-token-for-tests-0123456789"
DOC = openapi_document(ROUTES)
ALICE = "alice@example.com"
SAMPLE_PARAMS = {"who": ALICE, "email": ALICE, "id": "1"}


class Api:
    def __init__(self, client, token: str | None = TOKEN) -> None:
        self.client = client
        self.token = token

    async def call(self, method: str, template: str, expect: int | None = None, *, headers=None, json=None,
                   **params):
        path = PREFIX + template.format(**params) if params else PREFIX + template
        query = params.pop("query", None) if "query" in params else None
        hdrs = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        hdrs.update(headers or {})
        response = await self.client.request(method, path, headers=hdrs, params=query, json=json)
        body = await response.json()
        documented = DOC["paths"][PREFIX + template][method.lower()]["responses"]
        assert str(response.status) in documented, f"{method} {template} answered {response.status}: {body}"
        if expect is not None:
            assert response.status == expect, body
        if response.status >= 400:
            assert {"error", "message"} <= set(body)
        assert_documented_body(method, template, response.status, body)
        assert "no-store" in response.headers.get("Cache-Control", "")
        return response, body


def assert_documented_body(method: str, template: str, status: int, body) -> None:
    """The body validates against the schema DOC documents for this route and status."""
    response_doc = DOC["paths"][PREFIX + template][method.lower()]["responses"][str(status)]
    schema = response_doc["content"]["application/json"]["schema"]
    errors = list(Draft202012Validator({**schema, "components": DOC["components"]}).iter_errors(body))
    assert not errors, f"{method} {template} {status}: {[e.message for e in errors][:3]}"
    CALLED.add((method.lower(), template, status))


CALLED: set[tuple[str, str, int]] = set()  # (method, route, status) every test saw, schema-checked


def with_token(runtime, token: str | None):
    runtime.settings = runtime.settings.replaced(admin_token=token)


@pytest.fixture
async def client(aiohttp_client, runtime):
    with_token(runtime, TOKEN)
    return await aiohttp_client(build_app(runtime, background=False))


@pytest.fixture
def api(client) -> Api:
    return Api(client)


@pytest.fixture
async def alice(client, runtime):
    url = (await SupportDesk(runtime).issue_connect_link(ALICE, "test")).url
    status, _ = await connect(client, url)
    assert status == 200
    while runtime._tasks:  # the webhook check a Connect starts in the background
        await asyncio.gather(*list(runtime._tasks), return_exceptions=True)


def _fill(template: str) -> str:
    return template.format(**SAMPLE_PARAMS)


# --- auth and the off switch ---------------------------------------------------------------------


async def test_every_admin_route_answers_404_while_the_token_is_unset(aiohttp_client, runtime):
    with_token(runtime, None)
    client = await aiohttp_client(build_app(runtime, background=False))
    for route in ROUTES:
        method, template = route.method, route.path
        for headers in ({}, {"Authorization": f"Bearer {TOKEN}"}):
            response = await client.request(method, PREFIX + _fill(template), headers=headers)
            assert response.status == 404, (method, template)
            assert (await response.json())["error"] == "not_found"
    async with runtime.sessions() as session:
        assert (await session.execute(select(AuditEntry))).first() is None  # nothing ran


@pytest.mark.parametrize("authorization", [None, "Bearer wrong-token", f"Basic {TOKEN}", "Bearer", f"bearer  {TOKEN}x"])
async def test_wrong_or_missing_token_is_401_on_every_route(client, runtime, authorization):
    for route in ROUTES:
        method, template = route.method, route.path
        headers = {"Authorization": authorization} if authorization else {}
        response = await client.request(method, PREFIX + _fill(template), headers=headers)
        assert response.status == 401, (method, template, authorization)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert (await response.json())["error"] == "unauthorized"
    async with runtime.sessions() as session:
        assert (await session.execute(select(AuditEntry))).first() is None


async def test_the_scheme_is_case_insensitive(client):
    response = await client.get(f"{PREFIX}/rate-limit", headers={"Authorization": f"bearer {TOKEN}"})
    assert response.status == 200


async def test_unknown_admin_path_and_wrong_method_are_json_errors(client):
    headers = {"Authorization": f"Bearer {TOKEN}"}
    response = await client.get(f"{PREFIX}/nothing-here", headers=headers)
    assert response.status == 404 and (await response.json())["error"] == "not_found"
    response = await client.delete(f"{PREFIX}/audit", headers=headers)
    assert response.status == 405 and set(await response.json()) == {"error", "message"}


async def test_routes_outside_the_admin_api_are_untouched(client):
    response = await client.get("/healthz")
    assert response.status == 200


# --- users ---------------------------------------------------------------------------------------


async def test_diagnosis_equals_the_desk_and_the_cli_shape(api, runtime, alice):
    _, body = await api.call("GET", "/users/{who}/diagnosis", 200, who=ALICE)
    assert body == (await SupportDesk(runtime).diagnose(ALICE)).to_dict()
    assert set(body) == {"email", "athlete_id", "status", "findings", "facts"}
    assert body["status"] == "connected"
    _, by_id = await api.call("GET", "/users/{who}/diagnosis", 200, who=str(body["athlete_id"]))
    assert by_id["email"] == ALICE


async def test_diagnosis_of_an_unknown_user_is_a_diagnosis(api):
    _, body = await api.call("GET", "/users/{who}/diagnosis", 200, who="nobody@example.com")
    assert body["status"] == "unknown_user"
    assert "unknown_user" in [f["id"] for f in body["findings"]]


async def test_diagnosis_bad_who_is_400(api):
    _, body = await api.call("GET", "/users/{who}/diagnosis", 400, who="no such thing")
    assert body["error"] == "bad_argument"


async def test_diagnosis_never_returns_tokens(api, runtime, alice, standin):
    response, _ = await api.call("GET", "/users/{who}/diagnosis", 200, who=ALICE)
    text = await response.text()
    for token in standin.issued_tokens:
        assert token not in text
    assert standin.config.client_secret not in text


async def test_connect_link_is_returned_to_the_caller_audited_and_never_logged(api, runtime, caplog):
    caplog.set_level(logging.DEBUG)
    _, body = await api.call("POST", "/users/{email}/connect-link", 200, email="New@Example.com")
    assert set(body) == {"url", "expires_at"} and body["expires_at"].endswith("Z")
    assert body["url"].startswith("http://localhost:8080/connect/strava?t=")
    token = body["url"].split("t=", 1)[1]
    assert token not in caplog.text
    entries = await SupportDesk(runtime).audit_entries()
    assert entries[0]["actor"] == "admin-api" and entries[0]["action"] == "issue_connect_link"
    assert token not in json.dumps(entries)


async def test_connect_link_bad_email_is_400(api):
    _, body = await api.call("POST", "/users/{email}/connect-link", 400, email="not-an-email")
    assert body["error"] == "bad_email"


async def test_refresh_connected_user(api, alice):
    _, body = await api.call("POST", "/users/{email}/refresh", 200, email=ALICE)
    assert set(body) == {"email", "status", "refreshed", "expires_at", "error"}
    assert body["refreshed"] is True and body["error"] is None


async def test_refresh_unknown_user_is_404_and_not_connected_is_409(api, runtime):
    _, body = await api.call("POST", "/users/{email}/refresh", 404, email="nobody@example.com")
    assert body["error"] == "unknown_user"
    await SupportDesk(runtime).issue_connect_link("bob@example.com", "test")
    _, body = await api.call("POST", "/users/{email}/refresh", 409, email="bob@example.com")
    assert body["error"] == "not_connected" and body["result"]["refreshed"] is False


async def test_refresh_when_strava_fails_is_503_and_dead_grant_is_409(api, alice, standin, runtime):
    standin.fail_next("/oauth/token", 503)
    _, body = await api.call("POST", "/users/{email}/refresh", 503, email=ALICE)
    assert body["error"] == "strava_unavailable" and body["result"]["status"] == "connected"
    athlete = (await SupportDesk(runtime).diagnose(ALICE)).athlete_id
    standin.revoke_athlete(athlete)
    await standin.wait_for_deliveries()
    _, body = await api.call("POST", "/users/{email}/refresh", 409, email=ALICE)
    assert body["error"] in ("needs_reauth", "revoked")


async def test_refresh_without_strava_configuration_is_503(api, runtime, alice):
    runtime.strava = None
    _, body = await api.call("POST", "/users/{email}/refresh", 503, email=ALICE)
    assert body["error"] == "configuration"


async def test_disconnect(api, alice, standin):
    _, body = await api.call("POST", "/users/{email}/disconnect", 200, email=ALICE)
    assert body == {"email": ALICE, "status": "not_connected", "deauthorized": True, "warning": None}
    # A stranger is an answer, not a failure (as a diagnosis of one is): 200 with a warning.
    _, body = await api.call("POST", "/users/{email}/disconnect", 200, email="nobody@example.com")
    assert body["status"] == "unknown_user" and body["deauthorized"] is False
    assert "no FitGlue user" in body["warning"] and "nothing was disconnected" in body["warning"]


async def test_disconnect_when_strava_fails_still_forgets(api, alice, standin):
    standin.fail_next("/oauth/deauthorize", 503)
    _, body = await api.call("POST", "/users/{email}/disconnect", 200, email=ALICE)
    assert body["deauthorized"] is False and body["warning"]


# --- app-wide ------------------------------------------------------------------------------------


async def test_webhook_status_shape_and_strava_failure(api, standin):
    _, body = await api.call("GET", "/webhook", 200)
    assert set(body) == {"subscription", "callback_matches", "last_event_at", "last_registration"}
    assert body["subscription"] is None and body["callback_matches"] is False
    standin.fail_next("/api/v3/push_subscriptions", 503)
    _, body = await api.call("GET", "/webhook", 503)
    assert body["error"] == "strava_unavailable"


async def test_webhook_register_failure_reports_the_steps(api, runtime):
    # Our public URL (localhost:8080) is not this test server, so the callback check must fail.
    _, body = await api.call("POST", "/webhook/register", 502)
    assert body["error"] == "registration_failed" and "steps" in body
    entries = await SupportDesk(runtime).audit_entries(action="reregister_webhook")
    assert entries and entries[0]["actor"] == "admin-api"


async def test_rate_limit_shape(api):
    _, body = await api.call("GET", "/rate-limit", 200)
    assert set(body) >= {"overall", "read", "observed_at", "queued_jobs"}
    for budget in ("overall", "read"):
        assert set(body[budget]) == {"15min", "daily"}
        assert set(body[budget]["15min"]) == {"limit", "usage", "resets_at"}


async def test_jobs_list_retry_and_errors(api, runtime, clock):
    async with runtime.sessions() as session, session.begin():
        job = Job(kind="fetch_activity", payload="{}", run_after=clock.now() - timedelta(minutes=1), state="failed",
                  attempts=8, last_error="HTTP 500", created_at=clock.now())
        session.add(job)
        await session.flush()
        job_id = job.id
    _, body = await api.call("GET", "/jobs", 200)
    assert [j["id"] for j in body["jobs"]] == [job_id]
    _, body = await api.call("GET", "/jobs", 200, query={"state": "queued"})
    assert body == {"jobs": []}
    _, body = await api.call("GET", "/jobs", 400, query={"state": "bogus"})
    _, body = await api.call("POST", "/jobs/{id}/retry", 200, id=str(job_id))
    assert body["id"] == job_id and body["state"] == "queued"
    _, body = await api.call("POST", "/jobs/{id}/retry", 404, id="999999")
    _, body = await api.call("POST", "/jobs/{id}/retry", 400, id="abc")
    assert body["error"] == "bad_argument"


async def test_jobs_retry_of_a_done_job_is_409(api, runtime, clock):
    async with runtime.sessions() as session, session.begin():
        job = Job(kind="fetch_activity", payload="{}", run_after=clock.now(), state="done", created_at=clock.now())
        session.add(job)
        await session.flush()
        job_id = job.id
    _, body = await api.call("POST", "/jobs/{id}/retry", 409, id=str(job_id))


async def test_audit_pages_and_filters(api, runtime):
    desk = SupportDesk(runtime)
    for i in range(3):
        await desk.issue_connect_link(f"u{i}@example.com", "cli:someone")
    _, body = await api.call("GET", "/audit", 200, query={"limit": "2"})
    assert [e["target"] for e in body["entries"]] == ["u2@example.com", "u1@example.com"]
    _, older = await api.call("GET", "/audit", 200, query={"limit": "2", "before": str(body["next_before"])})
    assert [e["target"] for e in older["entries"]] == ["u0@example.com"] and older["next_before"] is None
    _, body = await api.call("GET", "/audit", 200, query={"actor": "nobody"})
    assert body == {"entries": [], "next_before": None}
    for bad in ({"limit": "0"}, {"limit": "x"}, {"limit": "501"}, {"before": "-1"}):
        _, body = await api.call("GET", "/audit", 400, query=bad)
        assert body["error"] == "bad_argument"


# --- the document --------------------------------------------------------------------------------


async def test_openapi_document_is_served_and_matches_the_router(api, client):
    _, body = await api.call("GET", "/openapi.json", 200)
    assert body["openapi"].startswith("3.1")
    served = set()
    for route in client.app.router.routes():
        path = route.resource.canonical if route.resource is not None else ""
        if not path.startswith(PREFIX) or route.method == "HEAD":
            continue
        served.add((route.method.lower(), path))
        assert path in body["paths"], f"{path} is not documented"
        assert route.method.lower() in body["paths"][path], f"{route.method} {path} is not documented"
    documented = {(method, path) for path, ops in body["paths"].items() for method in ops}
    assert documented == served
    for path, ops in body["paths"].items():
        for op in ops.values():
            assert {"200", "401", "404"} <= set(op["responses"]), path


def test_every_designed_route_is_documented():
    designed = {("get", "/users/{who}/diagnosis"), ("post", "/users/{email}/connect-link"),
                ("post", "/users/{email}/refresh"), ("post", "/users/{email}/disconnect"), ("get", "/webhook"),
                ("post", "/webhook/register"), ("get", "/rate-limit"), ("get", "/jobs"),
                ("post", "/jobs/{id}/retry"), ("get", "/audit"), ("get", "/openapi.json"),
                ("post", "/keys/rotate"),  # DESIGN.md additions: key rotation
                ("get", "/events"), ("post", "/events/{id}/retry"), ("post", "/events/retry-failed"),
                ("post", "/events/replay"),  # and outbound events
                ("get", "/users/{who}/history"), ("get", "/affected")}  # and issue 13
    documented = {(m, p[len(PREFIX):]) for p, ops in DOC["paths"].items() for m in ops}
    assert documented == designed


def test_schema_references_resolve():
    text = json.dumps(DOC)
    for name in {part.split('"')[0] for part in text.split("#/components/schemas/")[1:]}:
        assert name in DOC["components"]["schemas"], name



async def test_key_rotation_is_a_desk_operation_reached_from_the_admin_api(api, alice):
    """Issue 10: `POST keys/rotate` does what `fitglue db rotate-keys` does, audited as admin-api."""
    _, body = await api.call("POST", "/keys/rotate", 200)
    assert body == {"rotated": 1, "unreadable": 0}
    _, audit = await api.call("GET", "/audit", 200)
    assert [(e["actor"], e["action"], e["result"]) for e in audit["entries"][:1]] == [
        ("admin-api", "rotate_keys", "ok")]


async def test_history_pages_through_the_admin_api_like_the_desk(api, alice, runtime):
    """Issue 13: `GET users/{who}/history` is the desk's page; `before` pages on; bad input is 400."""
    _, first = await api.call("GET", "/users/{who}/history", 200, who=ALICE, query={"limit": "2"})
    assert first == HistoryBody.of(await SupportDesk(runtime).history.page(ALICE, 2)).to_json()
    assert len(first["entries"]) == 2 and first["next_before"]
    _, second = await api.call("GET", "/users/{who}/history", 200, who=ALICE,
                               query={"limit": "2", "before": first["next_before"]})
    assert second["entries"] and second["entries"][0]["at"] <= first["entries"][-1]["at"]
    assert second["entries"][0] not in first["entries"]
    _, bad = await api.call("GET", "/users/{who}/history", 400, who=ALICE, query={"before": "yesterday"})
    assert bad["error"] == "bad_argument"
    _, bad = await api.call("GET", "/users/{who}/history", 400, who=ALICE, query={"limit": "0"})
    _, missing = await api.call("GET", "/users/{who}/history", 404, who="nobody@example.com")
    assert missing["error"] == "unknown_user"


def test_the_document_is_valid_openapi_3_1():
    validate_openapi(DOC)


def test_every_route_body_is_a_model_schema():
    """Each documented 200 body (but the document itself) is a named schema generated from a model."""
    for path, ops in DOC["paths"].items():
        for method, op in ops.items():
            schema = op["responses"]["200"]["content"]["application/json"]["schema"]
            if path != PREFIX + "/openapi.json":
                assert "$ref" in schema, (method, path)
            for status, response in op["responses"].items():
                ref = response["content"]["application/json"]["schema"].get("$ref", "")
                assert not ref or ref.rsplit("/", 1)[1] in DOC["components"]["schemas"], (method, path, status)


async def test_every_documented_route_answers_a_body_that_validates(api, runtime, clock, alice):
    """One successful call per documented route, its real body checked against the generated schema."""
    async with runtime.sessions() as session, session.begin():
        job = Job(kind="catch_up", payload="{}", run_after=clock.now(), state="failed", attempts=8,
                  last_error="HTTP 500", created_at=clock.now())
        session.add(job)
        event = OutboundEvent(webhook_id="msg_route_check", type="strava.connection.connected", athlete_id=7,
                              body="{}", state="failed", attempts=7, created_at=clock.now())
        session.add(event)
        await session.flush()
        job_id, event_id = job.id, event.id
    # Outbound events on (nothing is sent: the app runs without its background work).
    runtime.settings = runtime.settings.replaced(events_url="http://127.0.0.1:9/events", events_secret=EVENTS_SECRET)
    calls = {("get", "/users/{who}/diagnosis"): {"who": ALICE},
             ("post", "/users/{email}/connect-link"): {"email": ALICE},
             ("post", "/users/{email}/refresh"): {"email": ALICE},
             ("post", "/users/{email}/disconnect"): {"email": ALICE},
             ("post", "/jobs/{id}/retry"): {"id": str(job_id)},
             ("post", "/events/{id}/retry"): {"id": str(event_id)},
             ("post", "/events/replay"): {"json": {"since": "2026-11-01T00:00:00Z"}},
             ("get", "/users/{who}/history"): {"who": ALICE},
             ("get", "/affected"): {"query": {"finding": "needs_reauth"}}}
    seen = set()
    for route in ROUTES:
        if (route.method, route.path) == ("POST", "/webhook/register"):
            continue  # its 200 needs a public URL that reaches this test server; its 502 is checked below
        params = calls.get((route.method.lower(), route.path), {})
        _, body = await api.call(route.method, route.path, 200, **params)
        seen.add((route.method.lower(), route.path))
    _, body = await api.call("POST", "/webhook/register", 502)
    documented = {(m, p[len(PREFIX):]) for p, ops in DOC["paths"].items() for m in ops}
    assert seen | {("post", "/webhook/register")} == documented


def test_each_documented_error_code_sits_under_its_status_from_the_error_table():
    for route in ROUTES:
        responses = DOC["paths"][PREFIX + route.path][route.method.lower()]["responses"]
        for code in route.errors:
            response = responses[str(ERRORS[code].http_status)]
            assert f"`{code}`" in response["description"], (route.path, code)
            if code in route.error_bodies:
                assert response["content"]["application/json"]["schema"]["$ref"].endswith(
                    route.error_bodies[code].__name__)
