"""Numbers, ids, limits, cursors and WHO from outside, through the admin API: a 400 `bad_argument`
and nothing changed, never a 500, a 503 or an ERROR log (issue 9, kind 8). The Slack side is in
tests/bot/test_slack_bodies.py, the CLI side in tests/integration/test_cli_outcomes.py."""

from __future__ import annotations

import logging
from urllib.parse import quote

import pytest
from hypothesis import strategies as st
from sqlalchemy import func, select

from service.app.factory import build_app
from service.db.models import AuditEntry, User
from service.web.admin_openapi import PREFIX
from tests.security.test_fuzzing import draw

TOKEN = "admin-token-for-input-tests-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}

MALFORMED_WHO = ["²", "%C2%B2", "١٢٣", "a@b", "alice", "alice%00@example.com", "12%E2%80%8B3",
                 "9" * 19, "9" * 25, "0", "-5", "+5", "%F0%9D%9F%97"]


@pytest.fixture
async def client(aiohttp_client, runtime):
    runtime.settings = runtime.settings.replaced(admin_token=TOKEN)
    return await aiohttp_client(build_app(runtime, background=False))


def _errors(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.ERROR]


async def _count(runtime, model) -> int:
    async with runtime.sessions() as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


async def test_unicode_superscript_two_as_who_is_400_not_500(client, caplog):
    response = await client.get(f"{PREFIX}/users/%C2%B2/diagnosis", headers=AUTH)
    assert response.status == 400
    body = await response.json()
    assert body["error"] == "bad_argument" and "²" in body["message"]
    assert _errors(caplog) == []


@pytest.mark.parametrize("who", MALFORMED_WHO)
async def test_malformed_who_is_bad_argument(client, caplog, who):
    response = await client.get(f"{PREFIX}/users/{who}/diagnosis", headers=AUTH)
    assert response.status == 400, await response.text()
    assert (await response.json())["error"] == "bad_argument"
    assert _errors(caplog) == []


async def test_well_formed_unknown_email_is_an_unknown_user_diagnosis(client):
    response = await client.get(f"{PREFIX}/users/nobody@example.com/diagnosis", headers=AUTH)
    assert response.status == 200
    assert (await response.json())["status"] == "unknown_user"
    by_id = await client.get(f"{PREFIX}/users/{2**63 - 1}/diagnosis", headers=AUTH)
    assert by_id.status == 200 and (await by_id.json())["status"] == "unknown_user"


@pytest.mark.parametrize("email", ["a@b", "alice%00@example.com", "ali%E2%80%8Bce@example.com", "%C2%B2"])
@pytest.mark.parametrize("action", ["connect-link", "refresh", "disconnect"])
async def test_malformed_email_routes_are_400_and_create_nobody(client, runtime, caplog, email, action):
    response = await client.post(f"{PREFIX}/users/{email}/{action}", headers=AUTH)
    assert response.status == 400, await response.text()
    assert (await response.json())["error"] == "bad_email"
    assert await _count(runtime, User) == 0
    assert _errors(caplog) == []


@pytest.mark.parametrize("job_id", ["%C2%B2", "%D9%A1%D9%A2", "0", "-1", "1e3", str(2**31), "9" * 19, "9" * 40])
async def test_job_ids_are_strict(client, caplog, job_id):
    response = await client.post(f"{PREFIX}/jobs/{job_id}/retry", headers=AUTH)
    assert response.status == 400, await response.text()
    assert (await response.json())["error"] == "bad_argument"
    assert _errors(caplog) == []


@pytest.mark.parametrize("query", [{"limit": "²"}, {"limit": "501"}, {"limit": "0"}, {"limit": "-1"},
                                   {"limit": "9" * 30}, {"before": "²"}, {"before": str(2**31)}, {"before": "9" * 19},
                                   {"before": "0"}, {"actor": "cli\x00root"}, {"target": "x" * 400}])
async def test_audit_paging_and_filters_are_strict(client, caplog, query):
    response = await client.get(f"{PREFIX}/audit", headers=AUTH, params=query)
    assert response.status == 400, await response.text()
    assert (await response.json())["error"] == "bad_argument"
    assert _errors(caplog) == []


async def test_audit_limit_at_the_maximum_is_accepted(client):
    response = await client.get(f"{PREFIX}/audit", headers=AUTH, params={"limit": "500", "before": str(2**31 - 1)})
    assert response.status == 200


async def test_odd_unicode_and_huge_numbers_anywhere_are_4xx_and_change_nothing(client, runtime, caplog):
    odd = st.one_of(
        # ASCII digits alone are a well-formed athlete id (an unknown_user diagnosis, 200): not odd.
        st.text(alphabet=st.characters(categories=["Nd", "No", "Nl", "Cf", "Zs"]), min_size=1, max_size=12)
        .filter(lambda t: not (t.isascii() and t.isdigit())),
        st.integers(min_value=2**63, max_value=10**40).map(str),
        st.integers(max_value=0).map(str),
        st.text(min_size=1, max_size=12).map(lambda t: t + "@example.com\x00"))
    for value in draw(odd, 40):
        quoted = quote(value, safe="")
        for method, path, params in (
                ("GET", f"{PREFIX}/users/{quoted}/diagnosis", None),
                ("POST", f"{PREFIX}/users/{quoted}/connect-link", None),
                ("POST", f"{PREFIX}/jobs/{quoted}/retry", None),
                ("GET", f"{PREFIX}/audit", {"limit": value}),
                ("GET", f"{PREFIX}/audit", {"before": value})):
            response = await client.request(method, path, headers=AUTH, params=params)
            assert 400 <= response.status < 500, (method, path, params, response.status, await response.text())
    assert await _count(runtime, User) == 0 and await _count(runtime, AuditEntry) == 0
    assert _errors(caplog) == []


async def test_a_bearer_token_that_is_not_utf8_is_401_not_500(client, caplog):
    from tests.raw_http import send, server_address

    response = await send(server_address(client), "GET", f"{PREFIX}/rate-limit", [],
                          headers={"Authorization": "Bearer \xff\xfe"})
    assert response.status == 401
    assert _errors(caplog) == []


@pytest.mark.parametrize("body", [b"\xff\xfe", b"t=%FF%FE", b"t=abc&&x", b"t"])
async def test_a_connect_form_that_is_not_a_form_is_400_and_starts_nothing(client, runtime, caplog, body):
    from service.db.models import OAuthAttempt

    response = await client.post("/connect/strava/authorize", data=body,
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status == 400
    assert await _count(runtime, OAuthAttempt) == 0
    assert _errors(caplog) == []


# Times at the very ends of what Python's datetime holds: an offset moves them past year 1 or 9999, and
# converting them to UTC overflowed (OverflowError, a 500) before they were refused as times.
EDGE_TIMES = ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"]


@pytest.mark.parametrize("since", EDGE_TIMES)
async def test_affected_since_at_the_ends_of_time_is_400(client, caplog, since):
    response = await client.get(f"{PREFIX}/affected", headers=AUTH, params={"finding": "revoked", "since": since})
    assert response.status == 400, await response.text()
    assert (await response.json())["error"] == "bad_argument"
    assert _errors(caplog) == []


@pytest.mark.parametrize("since", EDGE_TIMES)
def test_every_since_parser_refuses_the_ends_of_time_as_bad_input(since):
    """The same fault in the other parser of a time from outside (`events replay --since`); `affected`'s is
    checked through the admin API above."""
    from service.core.inputs import BadInput, parse_since

    with pytest.raises(BadInput):
        parse_since(since, "since")
