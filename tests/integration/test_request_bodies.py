"""Every route that reads a body reads all of it, within its size limit and within
FITGLUE_BODY_READ_TIMEOUT_S (issue 9, kind 1). Bodies are sent over a raw socket, in pieces, the
way a real network may deliver them."""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import zlib
from urllib.parse import urlencode

import pytest
from sqlalchemy import func, select
from yarl import URL

from service.app.factory import MAX_BODY_BYTES, build_app
from service.db.models import AuditEntry, OAuthAttempt
from service.desk.support_desk import SupportDesk
from service.web.admin_openapi import PREFIX
from service.web.strava_webhook import MAX_EVENT_BYTES
from standin import StravaStandin
from standin.testing import authorize_form
from tests.raw_http import _read_response, halves, send, server_address
from tests.webhook_support import all_events, all_jobs, point_public_url_at

EVENT = {"aspect_type": "create", "event_time": 1516126040, "object_id": 1360128428, "object_type": "activity",
         "owner_id": 134815, "subscription_id": 120475, "updates": {}}
EVENT_BODY = json.dumps(EVENT).encode()
JSON = {"Content-Type": "application/json"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
ADMIN_TOKEN = "admin-token-for-body-tests-0123456789"


@pytest.fixture
async def client(aiohttp_client, runtime):
    runtime.settings = runtime.settings.replaced(body_read_timeout_s=1, admin_token=ADMIN_TOKEN)
    client = await aiohttp_client(build_app(runtime, background=False))
    point_public_url_at(runtime, client)
    return client


async def _count(runtime, model) -> int:
    async with runtime.sessions() as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


# --- the webhook: the issue's example and its chunked twin -------------------------------------------


async def test_event_arriving_in_two_pieces_with_content_length_is_stored(client, runtime):
    response = await send(server_address(client), "POST", "/webhooks/strava", halves(EVENT_BODY), headers=JSON)
    assert response.status == 200, response.body
    assert json.loads(response.body) == {"status": "stored"}
    events = await all_events(runtime)
    assert [(e.object_id, e.owner_id) for e in events] == [(1360128428, 134815)]
    assert len(await all_jobs(runtime)) == 1


async def test_event_arriving_in_many_chunks_is_stored(client, runtime):
    pieces = [EVENT_BODY[i:i + 25] for i in range(0, len(EVENT_BODY), 25)]
    response = await send(server_address(client), "POST", "/webhooks/strava", pieces, headers=JSON, chunked=True)
    assert response.status == 200, response.body
    assert [e.object_id for e in await all_events(runtime)] == [1360128428]


async def test_event_of_exactly_the_limit_is_read_whole_and_one_byte_more_is_refused(client, runtime):
    padding = MAX_EVENT_BYTES - len(json.dumps({**EVENT, "updates": {"title": ""}}).encode())
    exact = json.dumps({**EVENT, "updates": {"title": "x" * padding}}).encode()
    assert len(exact) == MAX_EVENT_BYTES
    response = await send(server_address(client), "POST", "/webhooks/strava", halves(exact, 1000), headers=JSON,
                          chunked=True)
    assert response.status == 200, response.body
    over = exact[:-1] + b" }"
    response = await send(server_address(client), "POST", "/webhooks/strava", halves(over, 1000), headers=JSON,
                          chunked=True)
    assert response.status == 413 and json.loads(response.body)["error"] == "too_large"
    assert len(await all_events(runtime)) == 1


async def test_event_that_trickles_is_cut_off_and_nothing_is_stored(client, runtime):
    response = await send(server_address(client), "POST", "/webhooks/strava", [EVENT_BODY[:60]], headers=JSON,
                          content_length=len(EVENT_BODY), finish=False)
    assert response.status == 408
    assert json.loads(response.body)["error"] == "body_timeout"
    assert await all_events(runtime) == [] and await all_jobs(runtime) == []


async def test_chunked_event_that_never_ends_is_cut_off(client, runtime):
    response = await send(server_address(client), "POST", "/webhooks/strava", halves(EVENT_BODY), headers=JSON,
                          chunked=True, finish=False)
    assert response.status == 408
    assert await all_events(runtime) == []


# --- the Connect form ----------------------------------------------------------------------------


async def _link_token(runtime) -> str:
    issued = await SupportDesk(runtime).issue_connect_link("alice@example.com", "test")
    return URL(issued.url).query["t"]


async def test_connect_form_in_pieces_starts_the_flow(client, runtime):
    body = urlencode({"t": await _link_token(runtime)}).encode()
    # A browser posting our own form says so (same-origin check of the Connect flow).
    response = await send(server_address(client), "POST", "/connect/strava/authorize", halves(body, 20),
                          headers={**FORM, "Sec-Fetch-Site": "same-origin"})
    assert response.status == 303, response.body
    assert "/oauth/authorize" in response.headers["location"]
    assert await _count(runtime, OAuthAttempt) == 1


async def test_connect_form_that_trickles_is_cut_off_and_starts_nothing(client, runtime):
    body = urlencode({"t": await _link_token(runtime)}).encode()
    response = await send(server_address(client), "POST", "/connect/strava/authorize", [body[:20]], headers=FORM,
                          content_length=len(body), finish=False)
    assert response.status == 408
    assert await _count(runtime, OAuthAttempt) == 0


async def test_oversized_chunked_connect_form_is_refused(client, runtime):
    pieces = [b"t=" + b"x" * 100_000, b"x" * 100_000, b"x" * 100_000]
    response = await send(server_address(client), "POST", "/connect/strava/authorize", pieces, headers=FORM,
                          chunked=True)
    assert response.status == 413
    assert await _count(runtime, OAuthAttempt) == 0


# --- the admin API ---------------------------------------------------------------------------------


async def test_admin_post_whose_body_trickles_is_cut_off_and_does_nothing(client, runtime):
    headers = {**JSON, "Authorization": f"Bearer {ADMIN_TOKEN}"}
    response = await send(server_address(client), "POST", f"{PREFIX}/users/alice@example.com/connect-link",
                          [b"{"], headers=headers, content_length=50, finish=False)
    assert response.status == 408
    assert await _count(runtime, AuditEntry) == 0


async def test_admin_post_with_a_body_in_pieces_works(client, runtime):
    headers = {**JSON, "Authorization": f"Bearer {ADMIN_TOKEN}"}
    response = await send(server_address(client), "POST", f"{PREFIX}/users/alice@example.com/connect-link",
                          [b"{", b"}"], headers=headers)
    assert response.status == 200, response.body
    assert json.loads(response.body)["url"].startswith("http")


# --- the Strava stand-in reads bodies the same way -----------------------------------------------------


def _standin_address(standin: StravaStandin) -> tuple[str, int]:
    url = URL(standin.base_url or "")
    assert url.host is not None and url.port is not None
    return url.host, url.port


def _consent_body() -> bytes:
    params = {"client_id": "1001", "redirect_uri": "http://localhost:8080/oauth/strava/callback",
              "scope": "read,activity:read_all", "state": "s"}
    return urlencode(authorize_form(params)).encode()


async def test_standin_reads_a_form_sent_in_pieces(standin):
    response = await send(_standin_address(standin), "POST", "/oauth/authorize", halves(_consent_body(), 30),
                          headers=FORM)
    assert response.status == 302, response.body
    assert "code=" in response.headers["location"]


async def test_standin_reads_multipart_forms(standin):
    body = _consent_body().decode()
    fields = [tuple(pair.split("=", 1)) for pair in body.split("&")]
    from urllib.parse import unquote_plus

    parts = b"".join(
        f'--XyZ\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{unquote_plus(v)}\r\n'.encode() for k, v in fields
    ) + b"--XyZ--\r\n"
    response = await send(_standin_address(standin), "POST", "/oauth/authorize", halves(parts, 50),
                          headers={"Content-Type": "multipart/form-data; boundary=XyZ"})
    assert response.status == 302, response.body


async def test_standin_cuts_off_a_body_that_trickles(standin):
    standin.config.body_read_timeout_s = 0.5
    standin_body = _consent_body()
    response = await send(_standin_address(standin), "POST", "/oauth/token", [standin_body[:10]], headers=FORM,
                          content_length=len(standin_body), finish=False)
    assert response.status == 408


async def test_standin_ids_in_odd_digits_are_not_found_not_500(standin):
    import aiohttp

    from standin.testing import connect_athlete

    async with aiohttp.ClientSession() as http:
        token = (await connect_athlete(http, base=standin.base_url or ""))["access_token"]
    for path in ("/api/v3/activities/%C2%B2", "/api/v3/activities/%D9%A1%D9%A2", "/api/v3/activities/" + "9" * 30):
        response = await send(_standin_address(standin), "GET", path, [], headers={"Authorization": f"Bearer {token}"})
        assert response.status == 404, (path, response.status)
    for path in ("/sandbox/athletes/%C2%B2/revoke", "/sandbox/athletes/%C2%B2/activities"):
        response = await send(_standin_address(standin), "POST", path, [b""])
        assert response.status == 404, (path, response.status)
    params = {"client_id": "1001", "redirect_uri": "http://localhost:8080/oauth/strava/callback",
              "scope": "read", "state": "s"}
    body = urlencode(authorize_form(params, athlete_id="²")).encode()
    response = await send(_standin_address(standin), "POST", "/oauth/authorize", [body], headers=FORM)
    assert response.status == 400


# --- forms of every kind, broken escapes, deep JSON, bad HTTP (second pass of kinds 1 and 8) ----------


def _multipart(fields: dict[str, str], boundary: str = "XyZ") -> bytes:
    return b"".join(f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
                    for k, v in fields.items()) + f"--{boundary}--\r\n".encode()


def _errors(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


async def test_multipart_connect_form_is_read_like_an_urlencoded_one(client, runtime, caplog):
    body = _multipart({"t": await _link_token(runtime)})
    response = await send(server_address(client), "POST", "/connect/strava/authorize", halves(body, 20),
                          headers={"Content-Type": "multipart/form-data; boundary=XyZ", "Sec-Fetch-Site": "same-origin"})
    assert response.status == 303, response.body
    assert "/oauth/authorize" in response.headers["location"]
    assert await _count(runtime, OAuthAttempt) == 1
    assert _errors(caplog) == [] and "Traceback" not in caplog.text


@pytest.mark.parametrize("content_type", ["multipart/form-data", "multipart/form-data; boundary=Other"])
@pytest.mark.parametrize(("where", "address"), [("service", "client"), ("stand-in", "standin")])
async def test_multipart_without_its_boundary_is_400_bad_form_everywhere(client, standin, runtime, caplog,
                                                                         content_type, where, address):
    target = server_address(client) if address == "client" else _standin_address(standin)
    path = "/connect/strava/authorize" if address == "client" else "/oauth/authorize"
    response = await send(target, "POST", path, [_multipart({"t": "x"})], headers={"Content-Type": content_type})
    assert response.status == 400, (where, response.body)
    assert json.loads(response.body)["error"] == "bad_form"
    assert await _count(runtime, OAuthAttempt) == 0
    assert _errors(caplog) == [] and "Traceback" not in caplog.text


@pytest.mark.parametrize("body", [b"t=%ZZ", b"t=abc%", b"t=%4", b"a=1&t=%G0"])
async def test_a_broken_percent_escape_is_400_bad_form(client, runtime, body):
    response = await send(server_address(client), "POST", "/connect/strava/authorize", [body],
                          headers={**FORM, "Sec-Fetch-Site": "same-origin"})
    assert response.status == 400, response.body
    assert json.loads(response.body)["error"] == "bad_form"
    assert await _count(runtime, OAuthAttempt) == 0


@pytest.mark.parametrize("body", [b"[" * 5000, b'{"a":' * 3000, b'{"updates": ' + b"[" * 10_000 + b"}"])
async def test_json_nested_too_deeply_is_400_not_a_crash(client, runtime, caplog, body):
    response = await send(server_address(client), "POST", "/webhooks/strava", [body], headers=JSON)
    assert response.status == 400, response.body
    assert json.loads(response.body)["error"] == "bad_event"
    assert await all_events(runtime) == []
    assert _errors(caplog) == [] and "Traceback" not in caplog.text


async def test_a_request_line_over_aiohttps_limit_is_one_info_line(client, caplog):
    caplog.set_level(logging.INFO)
    response = await send(server_address(client), "GET", "/connect/strava?t=" + "a" * 100_000, [])
    assert response.status == 400
    assert _errors(caplog) == [] and "Traceback" not in caplog.text
    lines = [r for r in caplog.records if r.name == "aiohttp.server"]
    assert len(lines) == 1 and lines[0].levelno == logging.INFO and lines[0].exc_info is None
    assert "LineTooLong" in lines[0].getMessage() and len(lines[0].getMessage()) < 250


# --- a body whose Content-Encoding does not decode (review of issues 11 and 12) -----------------------

TOKEN_API_KEY = "token-api-key-for-body-tests-0123456789"


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
@pytest.mark.parametrize(("path", "headers"), [
    ("/webhooks/strava", JSON),
    ("/internal/api/strava/token", {**JSON, "Authorization": f"Bearer {TOKEN_API_KEY}"}),
    (f"{PREFIX}/events/replay", {**JSON, "Authorization": f"Bearer {ADMIN_TOKEN}"}),
    ("/connect/strava/authorize", {**FORM, "Sec-Fetch-Site": "same-origin"}),
])
async def test_a_body_that_does_not_decode_is_400_not_a_crash(client, runtime, caplog, encoding, path, headers):
    """`Content-Encoding: gzip` over plain bytes: aiohttp raises while the body is read (once a 500 with
    a traceback at ERROR on every route, before any key was checked on the webhook)."""
    runtime.settings = runtime.settings.replaced(token_api_key=TOKEN_API_KEY)
    response = await send(server_address(client), "POST", path, [EVENT_BODY],
                          headers={**headers, "Content-Encoding": encoding})
    assert response.status == 400, response.body
    assert json.loads(response.body)["error"] == "bad_body"
    assert response.headers["cache-control"] == "no-store"
    assert await all_events(runtime) == [] and await _count(runtime, OAuthAttempt) == 0
    assert _errors(caplog) == [] and "Traceback" not in caplog.text


async def test_a_gzip_body_that_inflates_past_the_limit_is_413(client, runtime, caplog):
    import gzip

    bomb = gzip.compress(b" " * (4 * MAX_EVENT_BYTES))  # a few hundred bytes on the wire
    response = await send(server_address(client), "POST", "/webhooks/strava", [bomb],
                          headers={**JSON, "Content-Encoding": "gzip"})
    assert response.status == 413, response.body
    assert await all_events(runtime) == []
    assert _errors(caplog) == [] and "Traceback" not in caplog.text


# --- the fast path for a body that arrived whole (review of issue 11's hot path) ----------------------


def _admin_json() -> dict[str, str]:
    return {**JSON, "Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.mark.parametrize("encoding", [None, "gzip"])
async def test_a_body_of_exactly_the_apps_limit_arriving_whole_is_read_and_one_byte_more_is_413(
        client, runtime, caplog, encoding):
    """The default route limit is the app's client_max_size, and aiohttp's own read refuses a body of
    client_max_size bytes: a whole body of exactly the limit was answered 413 by the fast path (the
    gzip form arrives with its headers, so it always took it) while the same bytes in pieces were read."""
    path = f"{PREFIX}/users/alice@example.com/connect-link"
    exact = b"{}" + b" " * (MAX_BODY_BYTES - 2)
    for body, status in ((exact, 200), (exact + b" ", 413)):
        headers = _admin_json()
        if encoding is not None:
            body, headers = gzip.compress(body), {**headers, "Content-Encoding": encoding}
        response = await send(server_address(client), "POST", path, [body], headers=headers)
        assert response.status == status, (len(body), response.body[:200])
    assert json.loads(response.body)["error"] == "too_large"
    assert _errors(caplog) == [] and "Traceback" not in caplog.text


@pytest.mark.parametrize("chunked", [False, True])
async def test_an_event_over_the_limit_sent_at_once_is_413(client, runtime, chunked):
    over = json.dumps({**EVENT, "updates": {"title": "x" * MAX_EVENT_BYTES}}).encode()
    response = await send(server_address(client), "POST", "/webhooks/strava", [over], headers=JSON, chunked=chunked)
    assert response.status == 413 and json.loads(response.body)["error"] == "too_large"
    assert await all_events(runtime) == []


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
@pytest.mark.parametrize("chunked", [False, True])
async def test_a_compressed_event_arriving_whole_is_read_and_one_inflating_past_the_limit_is_413(
        client, runtime, caplog, encoding, chunked):
    def compress(data: bytes) -> bytes:
        return zlib.compress(data) if encoding == "deflate" else gzip.compress(data)

    headers = {**JSON, "Content-Encoding": encoding}
    response = await send(server_address(client), "POST", "/webhooks/strava", [compress(EVENT_BODY)],
                          headers=headers, chunked=chunked)
    assert response.status == 200 and json.loads(response.body) == {"status": "stored"}
    bomb = compress(b" " * (MAX_EVENT_BYTES + 1))
    response = await send(server_address(client), "POST", "/webhooks/strava", [bomb], headers=headers, chunked=chunked)
    assert response.status == 413, response.body
    assert len(await all_events(runtime)) == 1
    assert _errors(caplog) == [] and "Traceback" not in caplog.text


async def _exchange(client, data: bytes, answers: int) -> list[tuple[int, bytes]]:
    """Write `data` on one connection at once and read `answers` responses from it."""
    reader, writer = await asyncio.open_connection(*server_address(client))
    try:
        writer.write(data)
        await writer.drain()
        got = []
        for _ in range(answers):
            response = await asyncio.wait_for(_read_response(reader), 10)
            got.append((response.status, response.body))
        return got
    finally:
        writer.close()


def _request(body: bytes, *, path: str = "/webhooks/strava", **headers: str) -> bytes:
    sent = {"Host": "fitglue.test", **JSON, "Content-Length": str(len(body)), **headers}
    return (f"POST {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in sent.items()) + "\r\n").encode() + body


async def test_pipelined_events_on_one_connection_are_each_read_whole(client, runtime, caplog):
    """Three requests written at once: each body has arrived whole when its turn comes (the fast path);
    an oversized one between them is refused without disturbing the next."""
    other = json.dumps({**EVENT, "object_id": 7}).encode()
    over = json.dumps({**EVENT, "updates": {"title": "x" * MAX_EVENT_BYTES}}).encode()
    answers = await _exchange(client, _request(EVENT_BODY) + _request(over) + _request(EVENT_BODY)
                              + _request(other, Connection="close"), 4)
    assert [status for status, _ in answers] == [200, 413, 200, 200]
    assert [json.loads(body).get("status") for _, body in answers] == ["stored", None, "duplicate", "stored"]
    assert sorted(e.object_id for e in await all_events(runtime)) == [7, 1360128428]
    assert _errors(caplog) == [] and "Traceback" not in caplog.text


async def test_a_content_length_shorter_than_the_body_reads_only_that_much(client, runtime, caplog):
    """The rest of the body is the next request on the connection, not HTTP: aiohttp answers 400 (its
    parser refuses the bytes it was given at once, the first request with them)."""
    answers = await _exchange(client, _request(EVENT_BODY, **{"Content-Length": "20"}), 1)
    assert answers[0][0] == 400
    assert await all_events(runtime) == []
    assert _errors(caplog) == [] and "Traceback" not in caplog.text


async def test_a_content_length_longer_than_the_body_is_a_timeout_not_a_fast_read(client, runtime, caplog):
    answers = await _exchange(client, _request(EVENT_BODY, **{"Content-Length": str(len(EVENT_BODY) + 10)}), 1)
    assert answers[0][0] == 408 and json.loads(answers[0][1])["error"] == "body_timeout"
    assert await all_events(runtime) == []
    assert _errors(caplog) == [] and "Traceback" not in caplog.text


@pytest.mark.parametrize("chunked", [False, True])
async def test_an_empty_event_body_is_400_bad_event(client, runtime, chunked):
    response = await send(server_address(client), "POST", "/webhooks/strava", [], headers=JSON, chunked=chunked)
    assert response.status == 400 and json.loads(response.body)["error"] == "bad_event"


async def test_expect_100_continue_gets_continue_then_the_body_is_read(client, runtime):
    reader, writer = await asyncio.open_connection(*server_address(client))
    try:
        writer.write(_request(b"", Expect="100-continue", Connection="close",
                              **{"Content-Length": str(len(EVENT_BODY))}))
        await writer.drain()
        assert await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5) == b"HTTP/1.1 100 Continue\r\n\r\n"
        writer.write(EVENT_BODY)
        await writer.drain()
        response = await asyncio.wait_for(_read_response(reader), 5)
    finally:
        writer.close()
    assert response.status == 200 and json.loads(response.body) == {"status": "stored"}


@pytest.mark.parametrize(("path", "headers"), [
    ("/webhooks/strava", {}),
    ("/internal/api/strava/token", {"Authorization": f"Bearer {TOKEN_API_KEY}"}),
    (f"{PREFIX}/users/alice@example.com/connect-link", {"Authorization": f"Bearer {ADMIN_TOKEN}"}),
    ("/connect/strava/authorize", {"Sec-Fetch-Site": "same-origin"}),
])
@pytest.mark.parametrize(("content_type", "body"), [
    (FORM["Content-Type"], b"a=%ZZ"),
    ("multipart/form-data; boundary=Other", _multipart({"a": "b"})),
])
async def test_a_malformed_form_arriving_whole_is_400_bad_form_on_every_route(client, runtime, caplog, path, headers,
                                                                              content_type, body):
    runtime.settings = runtime.settings.replaced(token_api_key=TOKEN_API_KEY)
    response = await send(server_address(client), "POST", path, [body], headers={**headers, "Content-Type": content_type})
    assert response.status == 400, response.body
    assert json.loads(response.body)["error"] == "bad_form"
    assert await all_events(runtime) == [] and await _count(runtime, OAuthAttempt) == 0
    assert _errors(caplog) == [] and "Traceback" not in caplog.text


@pytest.mark.parametrize("body", [
    pytest.param(b"\x1f\x8b" + bytes(range(256)) * 80, id="not-gzip-over-the-limit"),
    pytest.param(gzip.compress(b" " * 40 * 2**20), id="inflates-past-aiohttps-32MiB"),
])
async def test_a_refused_body_that_fails_to_decode_afterwards_logs_no_error(client, runtime, caplog, body):
    """413 is answered before the body is read to its end; aiohttp then reads the rest and drops it
    ("lingering"), and its decoding error there was logged at ERROR with a traceback ("Unhandled
    exception"), for bad input from a client."""
    caplog.set_level(logging.INFO)
    response = await send(server_address(client), "POST", "/webhooks/strava", [body],
                          headers={**JSON, "Content-Encoding": "gzip"})
    assert response.status == 413 and json.loads(response.body)["error"] == "too_large"
    assert await all_events(runtime) == []
    assert _errors(caplog) == [] and "Traceback" not in caplog.text
    lines = [r for r in caplog.records if r.name == "aiohttp.server"]
    assert len(lines) == 1 and lines[0].levelno == logging.INFO and lines[0].exc_info is None
    assert "did not decode" in lines[0].getMessage() and len(lines[0].getMessage()) < 250
