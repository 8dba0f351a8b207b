"""What reaches POST /slack/events before Bolt: bodies of any shape (issue 9, kind 8), bodies in
pieces and bodies that trickle (kind 1), and command text that is not what it looks like (kind 8)."""

from __future__ import annotations

import json
import logging
import time
from urllib.parse import quote

import pytest
from hypothesis import strategies as st

from tests.bot.conftest import Signed
from tests.bot.helpers import audit_rows
from tests.bot.test_commands import run
from tests.raw_http import halves, send, server_address
from tests.security.test_fuzzing import draw, json_values

FORM = "application/x-www-form-urlencoded"


def _errors(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.ERROR]


async def _post_unsigned(signed: Signed, body: bytes, content_type: str = FORM):
    ts = str(int(time.time()))
    response = await signed.client.post("/slack/events", data=body, headers={
        "Content-Type": content_type, "X-Slack-Request-Timestamp": ts, "X-Slack-Signature": "v0=" + "0" * 64})
    return response.status, await response.text()


async def test_unparseable_payload_is_400_without_an_error_log(signed: Signed, bot_runtime, caplog) -> None:
    caplog.set_level(logging.INFO)
    status, text = await _post_unsigned(signed, b"payload=%7B")
    assert status == 400, text
    assert json.loads(text)["error"] == "bad_request"
    assert _errors(caplog) == [] and "Traceback" not in caplog.text
    assert await audit_rows(bot_runtime) == []


@pytest.mark.parametrize(("body", "content_type"), [
    (b"payload=%7B", FORM),
    (b"payload=%5B1%5D", FORM),            # a JSON array, not an object
    (b"payload=1", FORM),
    (b"payload=%22text%22", FORM),
    (b"payload=" + quote(json.dumps({"type": "block_actions", "team": 5})).encode(), FORM),
    (b"payload=" + quote(json.dumps({"type": "block_actions", "user": [1], "enterprise": 3})).encode(), FORM),
    (b"command=%2Ffitglue&text=%FF%FE", FORM),  # percent-escapes that are not UTF-8
    (b"\xff\xfe\x00t\x00e\x00x\x00t", FORM),  # not UTF-8 at all
    (b"{", "application/json"),
    (b"[1, 2]", "application/json"),
    (b'{"type": "event_callback", "event": 5, "team_id": []}', "application/json"),
    (b"{\"authorizations\": 1, \"enterprise_id\": {}}", "application/json"),
])
async def test_bodies_bolt_cannot_read_are_refused_before_it(signed: Signed, caplog, body, content_type) -> None:
    status, text = await _post_unsigned(signed, body, content_type)
    assert status in (400, 401), (status, text)
    assert _errors(caplog) == [], [r.getMessage() for r in _errors(caplog)]


async def test_fuzzed_unsigned_bodies_are_never_500(signed: Signed, bot_runtime, caplog) -> None:
    payloads = st.one_of(
        json_values.map(lambda v: b"payload=" + quote(json.dumps(v)).encode()),
        json_values.map(lambda v: json.dumps(v).encode()),
        st.dictionaries(st.text(max_size=8), st.text(max_size=12), max_size=4).map(
            lambda d: "&".join(f"{quote(k)}={quote(v)}" for k, v in d.items()).encode()),
        st.binary(max_size=120),
        st.text(max_size=120).map(str.encode))
    for body, content_type in draw(st.tuples(payloads, st.sampled_from([FORM, "application/json", "text/plain"])),
                                   80):
        status, text = await _post_unsigned(signed, body, content_type)
        assert status in (400, 401, 404), (status, body[:80], text[:200])
    assert _errors(caplog) == []
    assert await audit_rows(bot_runtime) == []


async def test_a_signed_command_arriving_in_pieces_is_answered(signed: Signed, service) -> None:
    body = signed.command_body("help").encode()
    response = await send(server_address(service), "POST", "/slack/events", halves(body, 60),
                          headers=signed.headers(body.decode()))
    assert response.status == 200, response.body
    replies = await signed.slack.wait_for_responses(1)
    assert "/fitglue diagnose" in replies[0]["text"]


async def test_a_slack_body_that_trickles_is_cut_off(signed: Signed, service, bot_runtime) -> None:
    bot_runtime.settings = bot_runtime.settings.replaced(body_read_timeout_s=1)
    body = signed.command_body("diagnose alice@example.com").encode()
    response = await send(server_address(service), "POST", "/slack/events", [body[:60]],
                          headers=signed.headers(body.decode()), content_length=len(body), finish=False)
    assert response.status == 408
    assert signed.slack.responses == [] and await audit_rows(bot_runtime) == []


@pytest.mark.parametrize("who", ["²", "١٢٣", "12\u200b3", "a@b", "alice@example.com\u0000", "9" * 19, "9" * 400,
                                 "<mailto:a@b|a@b>"])
async def test_diagnose_with_a_malformed_who_gets_a_plain_reply(signed: Signed, caplog, who) -> None:
    _ack, reply = await run(signed, f"diagnose {who}")
    assert ("neither a well-formed e-mail address nor a Strava athlete id" in reply["text"]
            or "a Strava athlete id must be from 1 to 9223372036854775807" in reply["text"])
    assert "Usage: `/fitglue diagnose EMAIL`" in reply["text"]
    assert "unexpected" not in reply["text"]
    assert _errors(caplog) == []


async def test_link_and_diagnose_apply_the_same_email_rule(signed: Signed) -> None:
    _ack, link_reply = await run(signed, "link a@b")
    _ack, diagnose_reply = await run(signed, "diagnose a@b")
    assert "doesn't look like an e-mail address" in link_reply["text"]
    assert "neither a well-formed e-mail address" in diagnose_reply["text"]
    _ack, unknown = await run(signed, "diagnose nobody@example.com")
    assert "nobody@example.com" in unknown["text"] and "neither" not in unknown["text"]


@pytest.mark.parametrize("timestamp", ["\xff", "²", "12 34", "1e9", ""])
async def test_a_malformed_request_timestamp_is_400_not_500(signed: Signed, service, caplog, timestamp) -> None:
    body = signed.command_body("help").encode()
    response = await send(server_address(service), "POST", "/slack/events", [body], headers={
        "Content-Type": FORM, "X-Slack-Signature": "v0=" + "0" * 64, "X-Slack-Request-Timestamp": timestamp})
    assert response.status == 400, response.body
    assert _errors(caplog) == [] and signed.slack.responses == []


async def test_command_text_containing_payload_is_still_a_command(signed: Signed, service, bot_runtime) -> None:
    # Bolt took any form body containing the text "payload" for an interactivity payload (404).
    _ack, reply = await run(signed, "diagnose payload@example.com")
    assert reply["text"].startswith("payload@example.com")
    _ack, reply = await run(signed, "link payloads")
    assert "doesn't look like an e-mail address" in reply["text"]


async def test_a_command_holding_nul_is_still_audited(signed: Signed, bot_runtime) -> None:
    # PostgreSQL refuses NUL in text: the audit entry of the request must not be lost to it.
    await run(signed, "diagnose alice@example.com\x00")
    rows = await audit_rows(bot_runtime)
    assert [(r.action, r.target) for r in rows] == [("slack_command:diagnose", "diagnose alice@example.com\ufffd")]


@pytest.mark.parametrize("signature", ["v0=é", "\xff", "v0=" + "ü" * 64, "v0=\u00a0" + "0" * 63])
async def test_a_signature_header_that_is_not_ascii_is_401_before_bolt(signed: Signed, service, caplog,
                                                                      signature) -> None:
    caplog.set_level(logging.INFO)
    body = b"command=/fitglue&text=help"
    response = await send(server_address(service), "POST", "/slack/events", [body], headers={
        "Content-Type": FORM, "X-Slack-Signature": signature, "X-Slack-Request-Timestamp": str(int(time.time()))})
    assert response.status == 401, response.body
    assert json.loads(response.body)["error"] == "invalid_signature"
    assert _errors(caplog) == [] and "Traceback" not in caplog.text and signed.slack.responses == []
    refusals = [r.getMessage() for r in caplog.records if r.name == "fitglue.bot"]
    assert refusals == [f"refused a /slack/events request without a valid Slack signature ({len(body)} bytes)"]


async def test_an_unsigned_large_form_is_401_and_its_body_is_never_logged(signed: Signed, bot_runtime,
                                                                         caplog) -> None:
    caplog.set_level(logging.DEBUG)
    for name in [n for n in logging.root.manager.loggerDict if n.startswith("slack_bolt")]:
        caplog.set_level(logging.DEBUG, logger=name)  # whatever level an embedding app runs Bolt at
    body = ("command=%2Ffitglue&text=" + "secretish" * 28_000).encode()  # about 250 KB
    status, text = await _post_unsigned(signed, body)
    assert status == 401, text
    assert "secretish" not in caplog.text and len(caplog.text) < 2000
    assert await audit_rows(bot_runtime) == []


async def test_a_signed_command_still_reaches_bolt(signed: Signed, bot_runtime) -> None:
    response, _ = await signed.command("help")
    assert response.status == 200
