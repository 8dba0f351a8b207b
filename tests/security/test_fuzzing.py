"""Property-based fuzzing (hypothesis, example counts capped for CI): whatever arrives at the
webhook endpoint or at any admin API route documented in the OpenAPI document, the answer is never
a 500, and a refused request changes nothing."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from service.app.factory import build_app
from service.db.models import Job, User, WebhookEvent
from service.web.admin import ROUTES
from service.web.admin_openapi import openapi_document

ADMIN = "fuzz-admin-token-0123456789"

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=12)
event_fields = st.fixed_dictionaries({}, optional={
    "aspect_type": st.sampled_from(["create", "update", "delete", "", "other"]) | json_values,
    "event_time": st.integers(min_value=-1, max_value=2**63) | json_values,
    "object_id": st.integers(min_value=-5, max_value=2**64) | json_values,
    "object_type": st.sampled_from(["activity", "athlete", "route"]) | json_values,
    "owner_id": st.integers(min_value=-5, max_value=2**64) | json_values,
    "subscription_id": st.integers(min_value=-5, max_value=2**64) | json_values,
    "updates": st.dictionaries(st.text(max_size=10), st.text(max_size=10) | json_values, max_size=3) | json_values,
})
bodies = st.one_of(
    event_fields.map(lambda d: json.dumps(d).encode()),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=300),
    st.text(max_size=300).map(str.encode),
)


def draw(strategy: st.SearchStrategy, count: int = 60) -> list:
    """Examples drawn by hypothesis (edge cases first), to replay against the async app."""
    found: list = []

    @settings(max_examples=count, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(strategy)
    def collect(value: object) -> None:
        found.append(value)

    collect()
    return found


@pytest.fixture
async def client(aiohttp_client, runtime):
    runtime.settings = runtime.settings.replaced(admin_token=ADMIN)
    return await aiohttp_client(build_app(runtime, background=False))


async def counts(runtime) -> tuple[int, int, int]:
    async with runtime.sessions() as session:
        return (await session.scalar(select(func.count(WebhookEvent.id))) or 0,
                await session.scalar(select(func.count(Job.id))) or 0,
                await session.scalar(select(func.count(User.id))) or 0)


async def test_webhook_body_fuzz_never_500_and_refusals_store_nothing(client, runtime):
    for body, content_type in draw(st.tuples(bodies, st.sampled_from(["application/json", "text/plain", ""])),
                                   120):
        before = await counts(runtime)
        response = await client.post("/webhooks/strava", data=body,
                                     headers={"Content-Type": content_type} if content_type else {})
        assert response.status in (200, 400, 413, 415), (response.status, body[:80])
        if response.status != 200:
            assert await counts(runtime) == before
            payload = await response.json()
            assert set(payload) >= {"error", "message"}


async def test_oversized_webhook_body_is_413(client):
    response = await client.post("/webhooks/strava", data=b"{" + b" " * (1024 * 1024) + b"}",
                                 headers={"Content-Type": "application/json"})
    assert response.status == 413


def documented_operations() -> list[tuple[str, str]]:
    return [(method.upper(), path) for path, item in openapi_document(ROUTES)["paths"].items()
            for method in item if method in ("get", "post", "put", "delete", "patch")]


path_values = st.one_of(
    st.emails(), st.text(min_size=1, max_size=30).filter(lambda t: "/" not in t and t not in (".", "..")),
    st.integers(min_value=-10, max_value=10**12).map(str), st.sampled_from(["%00", "a%2Fb", "' OR 1=1 --", "…"]))


@pytest.mark.parametrize("method,path", documented_operations())
async def test_admin_route_fuzz_never_500(client, runtime, method, path):
    requests = st.tuples(
        st.lists(path_values, min_size=4, max_size=4),
        st.dictionaries(st.sampled_from(["limit", "state", "actor", "x"]), st.text(max_size=12), max_size=2),
        st.one_of(st.none(), json_values.map(json.dumps), st.binary(max_size=64)),
        st.sampled_from([f"Bearer {ADMIN}", f"Bearer {ADMIN}x", "", "Basic abc", f"bearer {ADMIN}"]))
    for params, query, body, auth in draw(requests, 40):
        names = re.findall(r"{(\w+)}", path)
        concrete = path
        for name, value in zip(names, params, strict=False):
            from urllib.parse import quote

            concrete = concrete.replace("{" + name + "}", quote(value, safe=""))
        headers = {"Authorization": auth} if auth else {}
        response = await client.request(method, concrete, params=query, data=body, headers=headers)
        assert response.status < 500 or response.status in (502, 503), (method, concrete, response.status)
        if auth.lower() != f"bearer {ADMIN}":  # the auth scheme is case-insensitive (RFC 7235)
            assert response.status == 401
        text = await response.text()
        assert "Traceback" not in text
