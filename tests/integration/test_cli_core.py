"""The core CLI commands through `service.app.cli.main`, against a temporary SQLite database."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from service.app.cli import main
from service.connections.tokens import reencrypt_all_tokens
from service.core.crypto import TokenCipher
from service.db.models import StravaConnection
from tests.conftest import SECRET_KEY


@pytest.fixture
def env(monkeypatch, tmp_path, standin):
    monkeypatch.chdir(tmp_path)
    for key in list(__import__("os").environ):
        if key.startswith(("FITGLUE_", "STRAVA_", "SLACK_")):
            monkeypatch.delenv(key)
    monkeypatch.setenv("FITGLUE_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("FITGLUE_SECRET_KEY", SECRET_KEY)
    monkeypatch.setenv("STRAVA_CLIENT_ID", standin.config.client_id)
    monkeypatch.setenv("STRAVA_CLIENT_SECRET", standin.config.client_secret)
    monkeypatch.setenv("STRAVA_OAUTH_URL", f"{standin.base_url}/oauth")
    monkeypatch.setenv("STRAVA_API_URL", f"{standin.base_url}/api/v3")
    assert main(["db", "upgrade"]) == 0
    return tmp_path


def test_init_writes_secrets_and_never_overwrites(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["init"]) == 0
    text = (tmp_path / ".env").read_text()
    secret_line = next(line for line in text.splitlines() if line.startswith("FITGLUE_SECRET_KEY="))
    assert len(secret_line.split("=", 1)[1]) >= 40
    assert "STRAVA_CLIENT_ID=\n" in text and "STRAVA_WEBHOOK_VERIFY_TOKEN=" in text
    assert (tmp_path / ".env").stat().st_mode & 0o077 == 0
    assert main(["init"]) == 2
    assert (tmp_path / ".env").read_text() == text


def test_link_json_creates_user_and_audits(env, capsys):
    assert main(["link", "New.User@Example.com", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"url", "expires_at"} and out["expires_at"].endswith("Z")
    assert main(["link", "new.user@example.com"]) == 0  # same user, any case
    text = capsys.readouterr().out
    assert "new user" not in text and "http://localhost:8080/connect/strava?t=" in text


def test_bad_email_is_a_usage_error(env, capsys):
    assert main(["link", "not-an-email", "--json"]) == 2
    assert json.loads(capsys.readouterr().out)["error"] == "bad_email"


def test_refresh_unknown_user_fails_with_json_error(env, capsys):
    assert main(["refresh", "nobody@example.com", "--json"]) == 1
    assert json.loads(capsys.readouterr().out) == {"error": "unknown_user",
                                                   "message": "no FitGlue user with e-mail nobody@example.com"}


def test_refresh_due_with_nothing_due(env, capsys):
    assert main(["refresh", "--due", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"refreshed": 0, "failed": 0, "results": []}


def test_missing_secret_key_is_exit_2_naming_it(env, monkeypatch, capsys):
    monkeypatch.delenv("FITGLUE_SECRET_KEY")
    assert main(["link", "a@example.com", "--json"]) == 2
    assert "FITGLUE_SECRET_KEY" in json.loads(capsys.readouterr().out)["message"]


async def test_rotate_keys_reencrypts_without_losing_a_connection(runtime, standin):

    from service.app.bootstrap import open_runtime

    old = TokenCipher(SECRET_KEY)
    async with runtime.sessions() as session, session.begin():
        from service.connections.users import connection_for, get_or_create_user

        user, _ = await get_or_create_user(session, "r@example.com", runtime.clock.now())
        conn = await connection_for(session, user, runtime.clock.now())
        conn.access_token_enc, conn.refresh_token_enc = old.encrypt("AT"), old.encrypt("RT")
    rotated_settings = runtime.settings.replaced(secret_key="new-key-xyz-123456",
                                           previous_secret_keys=(SECRET_KEY,))
    rt2 = await open_runtime(rotated_settings, runtime.clock, engine=None)
    try:
        assert await reencrypt_all_tokens(rt2) == (1, 0)
        async with rt2.sessions() as session:
            conn = (await session.execute(select(StravaConnection))).scalar_one()
    finally:
        await rt2.close()
    new_only = TokenCipher("new-key-xyz-123456")
    assert new_only.decrypt(conn.access_token_enc) == "AT" and new_only.decrypt(conn.refresh_token_enc) == "RT"
