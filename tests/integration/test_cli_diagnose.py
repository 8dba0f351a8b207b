"""`fitglue diagnose` and `fitglue forget` through `service.app.cli.main`, against a temporary database.

Commands run in a worker thread (their own event loop), so the Strava stand-in served by the test's
loop keeps answering them.
"""

from __future__ import annotations

import asyncio
import json
import os

import pytest
from sqlalchemy import func, select

from service.app.cli import main
from service.app.factory import build_app
from service.connections.erasure import erasure_label
from service.db.models import AuditEntry, User
from service.desk.support_desk import SupportDesk
from tests.conftest import SECRET_KEY
from tests.flows import connect

ALICE = "alice@example.com"


def _clean_env(monkeypatch, tmp_path) -> None:
    monkeypatch.chdir(tmp_path)
    for key in list(os.environ):
        if key.startswith(("FITGLUE_", "STRAVA_", "SLACK_")):
            monkeypatch.delenv(key)


@pytest.fixture
def env(monkeypatch, tmp_path, runtime, standin):
    """The CLI's environment, pointing at the test runtime's (migrated) database and the stand-in."""
    _clean_env(monkeypatch, tmp_path)
    monkeypatch.setenv("FITGLUE_DATABASE_URL", runtime.settings.database_url)
    monkeypatch.setenv("FITGLUE_SECRET_KEY", SECRET_KEY)
    monkeypatch.setenv("STRAVA_CLIENT_ID", standin.config.client_id)
    monkeypatch.setenv("STRAVA_CLIENT_SECRET", standin.config.client_secret)
    monkeypatch.setenv("STRAVA_OAUTH_URL", f"{standin.base_url}/oauth")
    monkeypatch.setenv("STRAVA_API_URL", f"{standin.base_url}/api/v3")
    return tmp_path


async def fitglue(*argv: str) -> int:
    return await asyncio.to_thread(main, list(argv))


@pytest.fixture
async def alice(aiohttp_client, runtime):
    client = await aiohttp_client(build_app(runtime, background=False))
    status, _ = await connect(client, (await SupportDesk(runtime).issue_connect_link(ALICE, "test")).url)
    assert status == 200
    while runtime._tasks:
        await asyncio.gather(*list(runtime._tasks), return_exceptions=True)


async def test_diagnose_json_is_exactly_the_diagnosis(env, alice, runtime, capsys):
    assert await fitglue("diagnose", ALICE, "--json") == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"email", "athlete_id", "status", "findings", "facts"}
    assert out["status"] == "connected" and out["email"] == ALICE
    for finding in out["findings"]:
        assert set(finding) >= {"id", "severity", "title", "detail", "remedy", "actions", "article"}
    expected = (await SupportDesk(runtime).diagnose(ALICE)).to_dict()
    expected["facts"]["now"] = out["facts"]["now"]  # the CLI reads the system clock
    assert [f["id"] for f in out["findings"]] == [f["id"] for f in expected["findings"]]


async def test_diagnose_text_has_status_line_grouped_findings_numbered_steps_and_facts(env, runtime, capsys):
    await SupportDesk(runtime).issue_connect_link("bob@example.com", "test")
    assert await fitglue("diagnose", "bob@example.com") == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].startswith("bob@example.com — Strava: not connected")
    assert "Warnings" in lines and "Facts" in lines
    assert "[WARNING] Strava is not connected — the user must act" in out
    assert "        1. " in out and "        2. " in out
    assert "actions: send_connect_link" in out
    assert lines.index("Warnings") < lines.index("Facts")
    assert SECRET_KEY not in out


async def test_broken_connection_is_still_exit_0(env, alice, runtime, standin, capsys):
    athlete = (await SupportDesk(runtime).diagnose(ALICE)).athlete_id
    standin.revoke_athlete(athlete)
    await standin.wait_for_deliveries()
    await SupportDesk(runtime).refresh_now(ALICE, "test")
    capsys.readouterr()
    assert await fitglue("diagnose", str(athlete)) == 0
    out = capsys.readouterr().out
    assert "Errors" in out and ("needs re-authorization" in out or "revoked" in out)


async def test_unknown_user_is_exit_0_and_bad_argument_is_2(env, capsys):
    assert await fitglue("diagnose", "nobody@example.com", "--json") == 0
    assert json.loads(capsys.readouterr().out)["status"] == "unknown_user"
    assert await fitglue("diagnose", "not a user", "--json") == 2
    assert json.loads(capsys.readouterr().out) == {
        "error": "bad_argument",
        "message": "'not a user' is neither a well-formed e-mail address nor a Strava athlete id (digits 0-9)"}
    assert await fitglue("diagnose", "not a user") == 2
    assert "error:" in capsys.readouterr().err


async def test_missing_argument_is_a_usage_error(env, capsys):
    assert await fitglue("diagnose") == 2  # main returns argparse's status: one line, no SystemExit
    assert "the following arguments are required: who" in capsys.readouterr().err


async def test_diagnose_needs_only_the_database_and_secret_key(monkeypatch, tmp_path, runtime, capsys):
    _clean_env(monkeypatch, tmp_path)
    monkeypatch.setenv("FITGLUE_DATABASE_URL", runtime.settings.database_url)
    monkeypatch.setenv("FITGLUE_SECRET_KEY", SECRET_KEY)
    assert await fitglue("diagnose", ALICE, "--json") == 0
    out = json.loads(capsys.readouterr().out)
    assert out["facts"]["strava_configured"] is False
    assert out["facts"]["subscription"]["note"] == "Strava is not configured"
    assert await fitglue("diagnose", ALICE) == 0
    assert "Strava is not configured" in capsys.readouterr().out


async def test_diagnose_without_secret_key_is_a_configuration_error(monkeypatch, tmp_path, capsys):
    _clean_env(monkeypatch, tmp_path)
    monkeypatch.setenv("FITGLUE_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    assert await fitglue("diagnose", ALICE, "--json") == 2
    out = json.loads(capsys.readouterr().out)
    assert out["error"] == "configuration" and "FITGLUE_SECRET_KEY" in out["message"]


async def test_diagnose_on_an_unmigrated_database_says_so(monkeypatch, tmp_path, capsys):
    _clean_env(monkeypatch, tmp_path)
    monkeypatch.setenv("FITGLUE_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}")
    monkeypatch.setenv("FITGLUE_SECRET_KEY", SECRET_KEY)
    assert await fitglue("diagnose", ALICE, "--json") == 1
    out = json.loads(capsys.readouterr().out)
    assert out["error"] == "database" and "fitglue db upgrade" in out["message"]


async def test_diagnose_when_strava_is_unreachable_degrades(monkeypatch, env, capsys):
    monkeypatch.setenv("STRAVA_API_URL", "http://127.0.0.1:9/api/v3")  # nothing listens there
    assert await fitglue("diagnose", ALICE, "--json") == 0
    sub = json.loads(capsys.readouterr().out)["facts"]["subscription"]
    assert sub["checked"] is False and sub["check_error"]


async def test_forget_erases_and_audits_anonymously(env, alice, runtime, standin, capsys):
    assert await fitglue("forget", ALICE) == 0
    out = capsys.readouterr().out
    label = await erasure_label(runtime, ALICE)
    assert label.startswith("user:hmac:") and label in out and "deauthorized" in out
    assert standin.count_calls("POST", "/oauth/deauthorize") == 1
    async with runtime.sessions() as session:
        assert (await session.execute(select(func.count()).select_from(User))).scalar_one() == 0
        entries = (await session.execute(select(AuditEntry))).scalars().all()
    forget = [e for e in entries if e.action == "forget"]
    assert len(forget) == 1 and forget[0].actor.startswith("cli:") and forget[0].target == label
    assert all(ALICE not in f"{e.target} {e.detail}" for e in entries)


async def test_forget_json_warning_when_strava_fails_is_exit_0(env, alice, runtime, standin, capsys):
    standin.fail_next("/oauth/deauthorize", 500)
    assert await fitglue("forget", ALICE, "--json") == 0
    out = json.loads(capsys.readouterr().out)
    assert out["deauthorized"] is False and "500" in out["warning"]
    assert out["deleted"]["users"] == 1 and out["forgotten"] == await erasure_label(runtime, ALICE)


async def test_forget_unknown_user_is_0_with_a_warning_and_bad_email_is_2(env, capsys):
    assert await fitglue("forget", "nobody@example.com", "--json") == 0
    out = json.loads(capsys.readouterr().out)
    assert out == {"forgotten": None, "deauthorized": False, "deleted": {},
                   "warning": "there is no FitGlue user with e-mail nobody@example.com, so nothing was erased"}
    assert await fitglue("forget", "nobody@example.com") == 0
    assert capsys.readouterr().out.strip() == ("nobody@example.com: warning: there is no FitGlue user with "
                                               "e-mail nobody@example.com, so nothing was erased")
    assert await fitglue("forget", "nope", "--json") == 2
    assert json.loads(capsys.readouterr().out)["error"] == "bad_email"
