"""The real `fitglue` process on the issue's examples (issue 9, kind 11): whatever fails, the person
at the terminal gets one line and the documented exit status, never a traceback (including the
ones a library's thread could print while the process exits)."""

from __future__ import annotations

import json
import socket

import pytest

from tests.e2e.procs import base_env, fitglue
from tests.integration.test_cli_outcomes import read_only_directory

pytestmark = pytest.mark.e2e

SERVE = {"FITGLUE_SECRET_KEY": "e2e-secret-key-0123456789", "STRAVA_CLIENT_ID": "1", "STRAVA_CLIENT_SECRET": "s",
         "STRAVA_WEBHOOK_VERIFY_TOKEN": "v"}


def _only_line(text: str) -> str:
    assert "Traceback" not in text, text
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, text
    return lines[0]


def test_serve_on_a_port_in_use(tmp_path):
    env = base_env(**SERVE, FITGLUE_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'f.db'}")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = fitglue(["serve", "--port", str(port)], env, tmp_path, timeout=30)
    assert result.returncode == 2
    line = _only_line(result.stderr)
    assert "--port" in line and "FITGLUE_PORT" in line and str(port) in line


def test_serve_and_link_on_read_only_storage(tmp_path):
    with read_only_directory(tmp_path) as folder:
        env = base_env(**SERVE, FITGLUE_DATABASE_URL=f"sqlite+aiosqlite:///{folder / 'fitglue.db'}")
        for command in (["serve", "--port", "0"], ["link", "alice@example.com"], ["db", "upgrade"]):
            result = fitglue(command, env, tmp_path, timeout=30)
            assert result.returncode == 1, (command, result.stderr)
            line = _only_line(result.stderr)
            assert str(folder / "fitglue.db") in line and "FITGLUE_DATABASE_URL" in line, command


def test_disconnect_of_a_user_not_connected_and_the_email_rule(tmp_path):
    env = base_env(FITGLUE_SECRET_KEY="e2e-secret-key-0123456789",
                   FITGLUE_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'f.db'}")
    assert fitglue(["db", "upgrade"], env, tmp_path).returncode == 0
    assert fitglue(["link", "alice@example.com"], env, tmp_path).returncode == 0
    result = fitglue(["disconnect", "alice@example.com", "--json"], env, tmp_path)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["deauthorized"] is False and "nothing to disconnect" in out["warning"]
    link, diagnose = (fitglue([cmd, "a@b"], env, tmp_path) for cmd in ("link", "diagnose"))
    assert (link.returncode, diagnose.returncode) == (2, 2)
    assert "e-mail" in _only_line(link.stderr) and "e-mail" in _only_line(diagnose.stderr)
