"""`POST /internal/api/strava/token` through the real app: the key, the off switch, every 400, unknown
users, dead grants, Strava failures, audit. The single-flight refresh is test_token_refresh.py."""

from __future__ import annotations

import json
import logging
from datetime import timedelta

import pytest

from service.app.factory import build_app
from service.web.token_api import PATH
from tests import token_support
from tests.token_support import (
    ALICE,
    AUTH,
    KEY,
    LIFETIME_S,
    ask,
    audit_entries,
    enable,
    set_connection,
)
from troubleshooting.vocabulary import REQUESTED_SCOPES, ConnectionStatus

# The fixtures this module uses, under their names.
client = token_support.client
alice = token_support.alice

# --- answers ------------------------------------------------------------------------------------


async def test_a_valid_token_is_handed_out_without_calling_strava(client, runtime, standin, alice, clock):
    calls = standin.count_calls("POST", "/oauth/token")
    status, body, _ = await ask(client, {"who": ALICE, "min_valid_s": 600})
    assert status == 200, body
    assert set(body) == {"athlete_id", "access_token", "expires_at", "granted_scopes", "refreshed"}
    assert body["athlete_id"] == alice and body["refreshed"] is False
    assert body["access_token"] in standin.issued_tokens
    assert body["granted_scopes"] == sorted(REQUESTED_SCOPES)
    assert body["expires_at"] == (clock.now() + timedelta(seconds=LIFETIME_S)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert standin.count_calls("POST", "/oauth/token") == calls


@pytest.mark.parametrize("who", ["ALICE@Example.com", " alice@example.com ", "athlete", "athlete-text"])
async def test_who_is_an_email_in_any_case_or_the_athlete_id_as_number_or_digits(client, alice, who):
    who = {"athlete": alice, "athlete-text": str(alice)}.get(who, who)
    status, body, _ = await ask(client, {"who": who})
    assert status == 200, body
    assert body["athlete_id"] == alice


async def test_an_expiring_token_is_refreshed_first(client, standin, alice, clock):
    _, before, _ = await ask(client, {"who": ALICE})
    clock.advance(LIFETIME_S - 500)  # 500 s left: less than the default min_valid_s (600)
    calls = standin.count_calls("POST", "/oauth/token")
    status, body, _ = await ask(client, {"who": ALICE})
    assert status == 200 and body["refreshed"] is True
    assert body["access_token"] != before["access_token"]
    assert body["expires_at"] == (clock.now() + timedelta(seconds=LIFETIME_S)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert standin.count_calls("POST", "/oauth/token") == calls + 1
    status, again, _ = await ask(client, {"who": ALICE, "min_valid_s": 3600})
    assert (status, again["refreshed"], again["access_token"]) == (200, False, body["access_token"])
    # min_valid_s 0: any token not yet expired will do
    clock.advance(LIFETIME_S - 100)
    status, last, _ = await ask(client, {"who": ALICE, "min_valid_s": 0})
    assert (status, last["refreshed"]) == (200, False)


# --- the key and the off switch -----------------------------------------------------------------


async def test_unset_key_means_404_for_everyone(aiohttp_client, runtime, alice):
    enable(runtime, None)
    client = await aiohttp_client(build_app(runtime, background=False))
    for headers in ({}, AUTH):
        for method in ("POST", "GET"):
            response = await client.request(method, PATH, headers=headers, json={"who": ALICE})
            assert response.status == 404
            assert response.headers["Cache-Control"] == "no-store"
            assert (await response.json())["error"] == "not_found"
    assert await audit_entries(runtime) == []


@pytest.mark.parametrize("authorization", [None, "Bearer wrong-key", f"Basic {KEY}", "Bearer", f"Bearer {KEY}x",
                                           "Bearer admin-token-0123456789abcdef", f"Bearer {KEY[:-1]}"])
async def test_wrong_or_missing_key_is_401_and_the_body_is_not_read(client, runtime, alice, authorization):
    runtime.settings = runtime.settings.replaced(admin_token="admin-token-0123456789abcdef")
    headers = {"Authorization": authorization} if authorization else {}
    status, body, response_headers = await ask(client, raw=b"{not json", headers=headers)
    assert status == 401 and body["error"] == "unauthorized"
    assert response_headers["WWW-Authenticate"].startswith("Bearer")
    [entry] = await audit_entries(runtime)
    assert (entry.action, entry.result, entry.target) == ("access_token", "unauthorized", None)


async def test_the_scheme_is_case_insensitive(client, alice):
    status, _, _ = await ask(client, {"who": ALICE}, headers={"Authorization": f"bearer {KEY}"})
    assert status == 200


async def test_other_methods_and_large_bodies_get_json_answers(client, alice):
    response = await client.get(PATH, headers=AUTH)
    assert response.status == 405 and response.headers["Cache-Control"] == "no-store"
    assert (await response.json())["error"] == "method_not_allowed"
    status, body, _ = await ask(client, raw=b'{"who": "' + b"a" * 5000 + b'@example.com"}')
    assert status == 413 and body["error"] == "too_large"


# --- 400s ---------------------------------------------------------------------------------------

BAD_BODIES = [
    b"", b"{not json", b"[]", b'"alice@example.com"', b"null", b"{}", b"\xff\xfe", b"[" * 4000,
    b'{"who": "alice@example.com", "min_valid": 600}',  # a typo must not silently mean the default
    b'{"who": "alice@example.com", "extra": 1}',
    b'{"who": 1' + b"0" * 4000 + b"}",  # a huge number, just under the body limit
    # a key named twice: the parser kept the last, a proxy in front may act on the first
    b'{"who": "alice@example.com", "who": 134815}',
    b'{"who": "alice@example.com", "min_valid_s": 0, "min_valid_s": 3600}',
]
BAD_WHO = [None, True, False, 0, -1, 1.5, 2.0, 2**63, 10**40, "", " ", "١٢٣", "12a", "+5", "1_000", "-7", "0",
           "9" * 30, "not-an-email", "a@b", "alice@example.com\u0000", "alice@exa mple.com", [], {"email": ALICE},
           "x" * 400 + "@example.com", "NaN"]
BAD_MIN_VALID = [3601, 10**30, -1, 1.5, 600.0, "600", True, False, [], {}, "NaN"]


@pytest.mark.parametrize("raw", BAD_BODIES, ids=range(len(BAD_BODIES)))
async def test_a_malformed_body_is_400(client, runtime, standin, alice, raw):
    calls = len(standin.calls)
    status, body, _ = await ask(client, raw=raw)
    assert status == 400, body
    assert body["error"] in ("bad_argument", "bad_email") and body["message"]
    assert len(standin.calls) == calls
    [entry] = await audit_entries(runtime)
    assert entry.result == "bad_request"


@pytest.mark.parametrize("who", BAD_WHO, ids=range(len(BAD_WHO)))
async def test_a_malformed_who_is_400(client, alice, who):
    status, body, _ = await ask(client, {"who": who})
    assert status == 400, body
    assert len(body["message"]) < 300


@pytest.mark.parametrize("min_valid_s", BAD_MIN_VALID, ids=range(len(BAD_MIN_VALID)))
async def test_min_valid_s_out_of_range_or_not_a_whole_number_is_400(client, alice, min_valid_s):
    status, body, _ = await ask(client, {"who": ALICE, "min_valid_s": min_valid_s})
    assert status == 400, body
    assert "min_valid_s" in body["message"]


async def test_more_than_an_hour_says_why(client, alice):
    _, body, _ = await ask(client, {"who": ALICE, "min_valid_s": 3601})
    assert "3600" in body["message"] and "hour" in body["message"]


async def test_json_literals_nan_and_infinity_are_400(client, alice):
    for raw in (b'{"who": NaN}', b'{"who": Infinity}', b'{"who": "alice@example.com", "min_valid_s": NaN}',
                b'{"who": "alice@example.com", "min_valid_s": -Infinity}'):
        status, _, _ = await ask(client, raw=raw)
        assert status == 400, raw


# --- 404 and 409 --------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["nobody@example.com", 424242, "424242"])
async def test_unknown_user_is_404(client, runtime, alice, who):
    status, body, _ = await ask(client, {"who": who})
    assert (status, body["error"]) == (404, "unknown_user")
    [entry] = await audit_entries(runtime)
    assert (entry.result, entry.target) == ("unknown_user", str(who))


async def test_a_user_who_never_connected_is_409_not_connected(client, runtime):
    from service.desk.support_desk import SupportDesk

    await SupportDesk(runtime).issue_connect_link("bob@example.com", "test")
    status, body, _ = await ask(client, {"who": "bob@example.com"})
    assert (status, body["error"], body["status"]) == (409, "not_connected", "not_connected")


async def test_a_dead_grant_is_409_needs_reauth(client, runtime, standin, alice, clock):
    standin.state.revoke(alice)  # revoked at Strava, and no event told us
    clock.advance(LIFETIME_S - 60)
    status, body, _ = await ask(client, {"who": alice})
    assert (status, body["error"], body["status"]) == (409, "needs_reauth", "needs_reauth")
    calls = standin.count_calls("POST", "/oauth/token")
    status, body, _ = await ask(client, {"who": ALICE, "min_valid_s": 0})  # the grant is known dead now
    assert (status, body["error"]) == (409, "needs_reauth")
    assert standin.count_calls("POST", "/oauth/token") == calls
    assert [e.result for e in await audit_entries(runtime)] == ["needs_reauth", "needs_reauth"]


@pytest.mark.parametrize("status_word", [ConnectionStatus.REVOKED, ConnectionStatus.NOT_CONNECTED, ConnectionStatus.NEEDS_REAUTH])
async def test_a_connection_that_is_not_connected_is_409_with_its_status(client, runtime, alice, status_word):
    await set_connection(runtime, alice, status=status_word)
    status, body, _ = await ask(client, {"who": ALICE})
    assert (status, body["error"], body["status"]) == (409, status_word, status_word)
    assert "access_token" not in body


# --- 503 ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("strava_status", "code"), [(500, "strava_unavailable"), (503, "strava_unavailable"),
                                                     (429, "rate_limited")])
async def test_strava_failing_is_503_with_retry_after_and_no_hammering(client, runtime, standin, alice, clock,
                                                                       strava_status, code):
    clock.advance(LIFETIME_S - 300)
    standin.fail_next("/oauth/token", strava_status)
    status, body, headers = await ask(client, {"who": ALICE})
    assert (status, body["error"]) == (503, code), body
    retry_after = int(headers["Retry-After"])
    assert 1 <= retry_after <= 3600
    calls = standin.count_calls("POST", "/oauth/token")
    status, _, headers = await ask(client, {"who": ALICE})  # backing off: Strava is not asked again
    assert status == 503 and int(headers["Retry-After"]) <= retry_after
    assert standin.count_calls("POST", "/oauth/token") == calls
    clock.advance(retry_after)
    status, body, _ = await ask(client, {"who": ALICE})
    assert (status, body["refreshed"]) == (200, True)
    assert standin.count_calls("POST", "/oauth/token") == calls + 1


async def test_strava_timing_out_is_503(client, runtime, standin, alice, clock):
    clock.advance(LIFETIME_S - 300)
    standin.fail_next("/oauth/token", 0, timeout=True)
    status, body, headers = await ask(client, {"who": ALICE})
    assert (status, body["error"]) == (503, "strava_unavailable") and int(headers["Retry-After"]) >= 1


# --- audit --------------------------------------------------------------------------------------


async def test_every_call_is_audited_with_target_and_outcome_never_the_token(client, runtime, standin, alice,
                                                                             clock):
    await ask(client, {"who": ALICE})
    await ask(client, {"who": alice, "min_valid_s": 0})
    clock.advance(LIFETIME_S - 60)
    await ask(client, {"who": ALICE})
    await ask(client, {"who": "nobody@example.com"})
    await ask(client, raw=b"[]")
    entries = await audit_entries(runtime)
    assert [(e.actor, e.action, e.target, e.result) for e in entries] == [
        ("token-api", "access_token", ALICE, "ok"), ("token-api", "access_token", ALICE, "ok"),
        ("token-api", "access_token", ALICE, "refreshed"),
        ("token-api", "access_token", "nobody@example.com", "unknown_user"),
        ("token-api", "access_token", None, "bad_request")]
    stored = json.dumps([[e.target, e.detail, e.result] for e in entries])
    assert not any(token in stored for token in standin.issued_tokens)
    metrics = await (await client.get("/metrics")).text()
    assert 'fitglue_token_api_requests_total{outcome="ok"} 2' in metrics
    assert 'fitglue_token_api_requests_total{outcome="refreshed"} 1' in metrics


# --- the settings, as an operator meets them ------------------------------------------------------


def test_init_leaves_the_token_api_off_like_the_admin_api(tmp_path, monkeypatch):
    from service.app.cli import main
    from service.core.settings import load_settings

    monkeypatch.chdir(tmp_path)
    assert main(["init"]) == 0
    text = (tmp_path / ".env").read_text()
    assert "\nFITGLUE_TOKEN_API_KEY=\n" in text and "\nFITGLUE_ADMIN_TOKEN=\n" in text
    assert load_settings({}, tmp_path / ".env").token_api_key is None


def test_the_readme_names_every_token_api_setting_with_its_default():
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    for variable, default in (("FITGLUE_TOKEN_API_KEY", "none"), ("FITGLUE_TOKEN_REFRESH_WAIT_S", "`15`"),
                              ("FITGLUE_TOKEN_REFRESH_POLL_MS", "`50`")):
        assert re.search(rf"^\| `{variable}` \| {default} \|", readme, re.MULTILINE), variable
    assert "## Access-token endpoint" in readme and PATH in readme


# --- failures of our own --------------------------------------------------------------------------


def test_every_refusal_kind_is_a_code_of_the_error_table():
    from service.connections import token_access
    from service.desk.error_table import ERRORS

    kinds = {token_access.STRAVA_UNAVAILABLE, token_access.RATE_LIMITED, token_access.APP_REJECTED,
             token_access.UNREADABLE, ConnectionStatus.NOT_CONNECTED, ConnectionStatus.NEEDS_REAUTH, ConnectionStatus.REVOKED}
    assert kinds <= set(ERRORS)


async def test_a_failing_database_is_503_with_retry_after_and_one_warning(client, runtime, alice, caplog,
                                                                          monkeypatch):
    import sqlite3
    from types import SimpleNamespace

    from sqlalchemy.exc import OperationalError

    from service.web.token_api import DESK

    reader = client.app[DESK].reader

    def broken_sqlite(*args):
        raise sqlite3.OperationalError("disk I/O error")

    def broken_connect():
        raise OperationalError("SELECT", {}, Exception("connection refused"))

    monkeypatch.setattr(reader, "_read_sqlite", broken_sqlite)  # SQLite: the reader's own connection
    monkeypatch.setattr(reader, "_autocommit", SimpleNamespace(connect=broken_connect))  # PostgreSQL
    status, body, headers = await ask(client, {"who": ALICE})
    assert (status, body["error"], body["message"]) == (503, "database", "the database is unavailable")
    assert int(headers["Retry-After"]) >= 1
    assert [r.levelname for r in caplog.records if r.name == "service.desk.token_desk"] == ["WARNING"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR] and "Traceback" not in caplog.text


async def test_strava_not_configured_is_503_only_when_a_refresh_is_needed(client, runtime, alice, clock):
    runtime.strava = None
    status, _, _ = await ask(client, {"who": ALICE})
    assert status == 200  # a valid token needs no Strava
    clock.advance(LIFETIME_S - 60)
    status, body, headers = await ask(client, {"who": ALICE})
    assert (status, body["error"]) == (503, "configuration") and "STRAVA_CLIENT_ID" in body["message"]
    assert int(headers["Retry-After"]) >= 1


@pytest.mark.parametrize("odd", [{"access_token": None}, {"refresh_token": None}, {"access_token": ""},
                                 {"expires_at": 10**20}, {"expires_at": True}], ids=range(5))
async def test_an_odd_answer_from_strava_during_the_refresh_is_503_and_keeps_the_grant(client, runtime, standin,
                                                                                       alice, clock, caplog, odd):
    """A 200 from Strava's token endpoint that is not a grant: nothing is stored or handed out (once the
    text "None" was, or the refresh token was replaced by junk, or an OverflowError kept the lease)."""
    clock.advance(LIFETIME_S - 300)
    standin.fail_next("/oauth/token", 200, {"token_type": "Bearer", "access_token": "odd-access",
                                            "refresh_token": "odd-refresh", "expires_at": 2_000_000_000, **odd})
    status, body, headers = await ask(client, {"who": ALICE})
    assert (status, body["error"]) == (503, "strava_unavailable"), body
    clock.advance(int(headers["Retry-After"]))
    status, body, _ = await ask(client, {"who": ALICE})  # the stored refresh token still works at Strava
    assert (status, body["refreshed"]) == (200, True), body
    assert body["access_token"] in standin.issued_tokens
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize("key", ["q7", "short-key-0123456789", " " + KEY, KEY + " ", KEY + "\n"])
def test_a_short_or_space_padded_token_api_key_is_a_configuration_error(key):
    """The key guards every user's Strava token and a wrong guess costs only a 401: a one-character key
    was accepted. A key with a stray space refused every call with 401 and no hint why."""
    from service.core.settings import ConfigError, Settings

    with pytest.raises(ConfigError) as info:
        Settings.from_values(token_api_key=key)
    assert "FITGLUE_TOKEN_API_KEY" in str(info.value) and key.strip() not in str(info.value)
    assert Settings.from_values(token_api_key="").token_api_key is not None  # empty: the endpoint is off


def test_the_readmes_reverse_proxy_keeps_the_token_endpoint_off_the_internet():
    """A newcomer copies the README's nginx block as it is: it once passed /internal/ through, so the
    endpoint that hands out every user's Strava token was public."""
    from pathlib import Path

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    nginx = readme.split("```nginx", 1)[1].split("```", 1)[0]
    blocked = nginx.split("location /internal/", 1)[1].split("}", 1)[0]
    assert "return 404" in blocked or "deny all" in blocked


async def test_a_flood_of_wrong_keys_writes_at_most_ten_entries_a_minute_and_counts_the_rest(client, runtime,
                                                                                             clock):
    """Every wrong-key call wrote an audit entry, kept a year: a flood of them grew the database at
    the caller's pace, for free. Now at most WRONG_KEY_ENTRIES_PER_MIN a minute; the metric counts all."""
    clock.set(clock.now().replace(second=0, microsecond=0))
    for _ in range(25):
        status, _body, _headers = await ask(client, {"who": ALICE}, headers={"Authorization": "Bearer wrong-key"})
        assert status == 401
    entries = await audit_entries(runtime)
    assert len(entries) == 10  # WRONG_KEY_ENTRIES_PER_MIN; before: 25
    assert all(e.result == "unauthorized" and "were not recorded" not in (e.detail or "") for e in entries)
    clock.advance(60)
    assert (await ask(client, {"who": ALICE}, headers={"Authorization": "Bearer wrong-key"}))[0] == 401
    [*_, last] = await audit_entries(runtime)
    assert last.detail == ("missing or wrong FITGLUE_TOKEN_API_KEY (15 more such call(s) since the last entry "
                           "were not recorded: at most 10 entries a minute)")
    metrics = await (await client.get("/metrics")).text()
    assert 'fitglue_token_api_requests_total{outcome="unauthorized"} 26' in metrics
