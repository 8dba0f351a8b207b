"""The CLI says exactly what happened, in one line, with the documented exit status, and never a
traceback (issue 9, kind 11); its arguments follow service.core.inputs' rules (kind 8).

Commands run in-process through `service.app.cli.main` (in a worker thread, so the stand-in served by
the test's loop keeps answering): an exception escaping `main` fails the test.
"""

# ruff: noqa: F811 - `env` and `alice` are fixtures shared with test_cli_diagnose

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from service.app.cli import main
from service.connections.tokens import drop_tokens
from service.db.models import StravaConnection, User
from tests.conftest import SECRET_KEY
from tests.integration.test_cli_diagnose import ALICE, alice, env, fitglue  # noqa: F401, F811 - fixtures
from troubleshooting.vocabulary import ConnectionStatus


def _one_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, text
    assert "Traceback" not in text
    return lines[0]


@pytest.fixture
def serve_env(monkeypatch, tmp_path):
    """What `serve` needs, with no Strava behind it (these tests stop before anything calls it).
    Tests using it are synchronous: serve installs signal handlers, which only the main thread may."""
    monkeypatch.chdir(tmp_path)
    for key in list(os.environ):
        if key.startswith(("FITGLUE_", "STRAVA_", "SLACK_")):
            monkeypatch.delenv(key)
    for name, value in {"FITGLUE_SECRET_KEY": SECRET_KEY, "STRAVA_CLIENT_ID": "1", "STRAVA_CLIENT_SECRET": "s",
                        "STRAVA_WEBHOOK_VERIFY_TOKEN": "verify", "STRAVA_API_URL": "http://127.0.0.1:9/api/v3",
                        "STRAVA_OAUTH_URL": "http://127.0.0.1:9/oauth",
                        "FITGLUE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'fitglue.db'}"}.items():
        monkeypatch.setenv(name, value)
    # serve configures logging; keep pytest's own handlers (as tests/bot/test_wiring.py does)
    monkeypatch.setattr("service.app.cli.serve_cmd.configure_logging", lambda *a, **k: None)
    return tmp_path


# --- serve: the listen address -----------------------------------------------------------------------


def test_serve_on_a_port_in_use_is_one_line_exit_2(serve_env, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "--port", str(port)]) == 2
    line = _one_line(capsys.readouterr().err)
    assert f"port {port}" in line and "already in use" in line and "--port" in line and "FITGLUE_PORT" in line


@pytest.mark.parametrize(("argv", "env_port"), [(["--port", "70000"], None), (["--port", "²"], None),
                                                (["--port", "-1"], None), ([], "99999"), ([], "٨٠٨٠")])
def test_serve_with_a_port_out_of_range_is_one_line_exit_2(serve_env, monkeypatch, capsys, argv, env_port):
    if env_port is not None:
        monkeypatch.setenv("FITGLUE_PORT", env_port)
    assert main(["serve", *argv]) == 2
    line = _one_line(capsys.readouterr().err)
    assert ("--port" in line and "FITGLUE_PORT" in line) if argv else "FITGLUE_PORT" in line


def test_serve_on_an_address_not_of_this_machine_is_exit_2(serve_env, capsys):
    assert main(["serve", "--host", "name.invalid", "--port", "0"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "--host" in line and "FITGLUE_HOST" in line


# --- storage that cannot be written -----------------------------------------------------------------


@contextlib.contextmanager
def read_only_directory(base: Path) -> Iterator[Path]:
    """A directory nobody may write to: chmod for an ordinary user; for root (whom permissions do not
    stop) a read-only tmpfs when mounting is allowed."""
    folder = base / "read-only"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            yield folder
        finally:
            folder.chmod(0o755)
        return
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(folder)],
                             capture_output=True, check=False)
    if mounted.returncode != 0:
        pytest.skip("running as root and cannot mount a read-only tmpfs")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=False)


@pytest.mark.parametrize("command", [["serve", "--port", "0"], ["db", "upgrade"]])
def test_read_only_storage_is_one_line_exit_1_naming_the_path(serve_env, monkeypatch, capsys, tmp_path,
                                                                    command):
    with read_only_directory(tmp_path) as folder:
        monkeypatch.setenv("FITGLUE_DATABASE_URL", f"sqlite+aiosqlite:///{folder / 'fitglue.db'}")
        assert main(command) == 1
    line = _one_line(capsys.readouterr().err)
    assert str(folder / "fitglue.db") in line and "FITGLUE_DATABASE_URL" in line


@pytest.mark.parametrize("command", [["serve", "--port", "0"], ["db", "upgrade"], ["link", ALICE],
                                     ["diagnose", ALICE], ["jobs"], ["ratelimit"]])
def test_storage_whose_directory_is_a_file_is_one_line_exit_1(serve_env, monkeypatch, capsys, tmp_path,
                                                                    command):
    (tmp_path / "not-a-dir").write_text("")
    monkeypatch.setenv("FITGLUE_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'not-a-dir' / 'fitglue.db'}")
    assert main(command) == 1
    line = _one_line(capsys.readouterr().err)
    assert str(tmp_path / "not-a-dir") in line and "FITGLUE_DATABASE_URL" in line


async def test_commands_on_an_unmigrated_database_say_so(env, monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("FITGLUE_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}")
    for command in (["link", ALICE, "--json"], ["jobs", "--json"], ["disconnect", ALICE, "--json"]):
        assert await fitglue(*command) == 1
        out = json.loads(capsys.readouterr().out)
        assert out["error"] == "database" and "fitglue db upgrade" in out["message"], command


async def test_an_unparseable_database_url_is_a_configuration_error(env, monkeypatch, capsys):
    monkeypatch.setenv("FITGLUE_DATABASE_URL", "not a url")
    assert await fitglue("link", ALICE) == 2
    assert "FITGLUE_DATABASE_URL" in _one_line(capsys.readouterr().err)


async def test_init_where_nothing_can_be_written_is_one_line_exit_1(tmp_path, capsys):
    assert await fitglue("init", "--path", str(tmp_path / "missing" / ".env")) == 1
    assert str(tmp_path / "missing" / ".env") in _one_line(capsys.readouterr().err)


# --- disconnect says what happened -------------------------------------------------------------------


async def test_disconnect_of_a_user_never_connected_warns_and_claims_nothing(env, capsys):
    assert await fitglue("link", ALICE, "--json") == 0
    capsys.readouterr()
    assert await fitglue("disconnect", ALICE, "--json") == 0
    out = json.loads(capsys.readouterr().out)
    assert out["deauthorized"] is False and out["status"] == ConnectionStatus.NOT_CONNECTED
    assert "nothing to disconnect" in out["warning"]
    assert await fitglue("disconnect", ALICE) == 0
    text = capsys.readouterr().out
    assert "nothing to disconnect" in text and "disconnected" not in text.replace("nothing to disconnect", "")


async def test_disconnect_of_an_unknown_user_is_exit_0_with_a_warning(env, capsys):
    assert await fitglue("disconnect", "nobody@example.com", "--json") == 0
    out = json.loads(capsys.readouterr().out)
    assert out == {"email": "nobody@example.com", "status": "unknown_user", "deauthorized": False,
                   "warning": "there is no FitGlue user with e-mail nobody@example.com, so nothing was disconnected"}


async def test_a_database_that_cannot_be_reached_is_one_line_naming_the_setting(env, monkeypatch, capsys):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("FITGLUE_DATABASE_URL", f"postgresql+asyncpg://fitglue@127.0.0.1:{port}/fitglue")
    for command in (["link", ALICE], ["diagnose", ALICE], ["jobs"], ["db", "upgrade"]):
        assert await fitglue(*command) == 1, command
        line = _one_line(capsys.readouterr().err)
        assert line.startswith(f"error: the database at postgresql+asyncpg://fitglue@127.0.0.1:{port}/fitglue "
                               "could not be reached (ConnectionRefusedError"), line
        assert "FITGLUE_DATABASE_URL" in line


@pytest.mark.parametrize("argv", [["manifest"], ["diagnose", ALICE, "--json"], ["jobs", "--json"],
                                  ["diagnose", "not an email", "--json"]])
def test_a_reader_that_closes_stdout_ends_quietly(env, argv):
    """`fitglue … | head -1`: no BrokenPipeError traceback (nor a second one from the failure
    line), and the conventional 141 (128 + SIGPIPE), for every command."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the command writes
    try:
        finished = subprocess.run(
            [sys.executable, "-c", "import sys; from service.app.cli import main; sys.exit(main(sys.argv[1:]))", *argv],
            stdout=write_end, stderr=subprocess.PIPE, timeout=60,
            # An HTTPS public URL: `manifest` rightly warns on stderr about an http:// one.
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
                 "FITGLUE_PUBLIC_URL": "https://support.fitglue.example"})
    finally:
        os.close(write_end)
    assert finished.stderr == b"", finished.stderr.decode()
    assert finished.returncode == 141


async def test_disconnect_of_a_revoked_connection_says_there_was_nothing_to_deauthorize(env, alice, runtime,
                                                                                       capsys):
    async with runtime.sessions() as session, session.begin():
        conn = (await session.execute(select(StravaConnection).join(User).where(User.email == ALICE))).scalar_one()
        conn.status = ConnectionStatus.REVOKED
        drop_tokens(conn)
    assert await fitglue("disconnect", ALICE, "--json") == 0
    out = json.loads(capsys.readouterr().out)
    assert out["deauthorized"] is False and "nothing to deauthorize" in out["warning"]


async def test_disconnect_of_a_connected_user_says_strava_deauthorized(env, alice, capsys):
    assert await fitglue("disconnect", ALICE) == 0
    line = _one_line(capsys.readouterr().out)
    assert "deauthorized at Strava" in line and "warning" not in line


# --- one e-mail rule, one WHO rule, strict numbers -----------------------------------------------------


async def test_link_and_diagnose_agree_about_a_at_b(env, capsys):
    assert await fitglue("link", "a@b") == 2
    assert "not a well-formed e-mail address" in _one_line(capsys.readouterr().err)
    assert await fitglue("diagnose", "a@b") == 2
    assert "neither a well-formed e-mail address" in _one_line(capsys.readouterr().err)
    assert await fitglue("diagnose", "nobody@example.com", "--json") == 0
    assert json.loads(capsys.readouterr().out)["status"] == "unknown_user"


@pytest.mark.parametrize("command", [["link"], ["refresh"], ["disconnect"], ["forget"]])
@pytest.mark.parametrize("email", ["a@b", "alice@example.com\x00", "ali\u200bce@example.com", "²"])
async def test_every_email_command_applies_the_same_rule(env, capsys, command, email):
    assert await fitglue(*command, email, "--json") == 2
    assert json.loads(capsys.readouterr().out)["error"] == "bad_email"


@pytest.mark.parametrize("who", ["²", "١٢٣", "9999999999999999999", "9" * 400, "0", "\udcff@example.com"])
async def test_diagnose_with_a_malformed_who_is_a_usage_error(env, capsys, who):
    assert await fitglue("diagnose", who, "--json") == 2
    assert json.loads(capsys.readouterr().out)["error"] == "bad_argument"


@pytest.mark.parametrize("argv", [["jobs", "--limit", "-1"], ["jobs", "--limit", "0"], ["jobs", "--limit", "501"],
                                  ["jobs", "--limit", "9" * 30], ["jobs", "--limit", "²"],
                                  ["jobs", "retry", "١٢"], ["jobs", "retry", str(2**31)],
                                  ["jobs", "retry", "0"]])
async def test_numbers_are_ascii_digits_in_range(env, capsys, argv):
    assert await fitglue(*argv) == 2
    line = _one_line(capsys.readouterr().err)
    assert "digits 0-9" in line or "must be from" in line


async def test_usage_errors_are_one_line_and_json_with_json(env, capsys):
    assert await fitglue("diagnose") == 2
    assert "fitglue diagnose" in _one_line(capsys.readouterr().err)
    assert await fitglue("jobs", "--limit", "x", "--json") == 2
    assert json.loads(capsys.readouterr().out)["error"] == "usage"


# --- options a command would ignore are refused ----------------------------------------------------------


@pytest.mark.parametrize("argv", [["refresh", ALICE, "--due"], ["jobs", "--state", "failed", "retry", "3"],
                                  ["jobs", "--limit", "5", "retry", "--failed"], ["serve", "--host", " "]])
def test_options_that_would_be_ignored_are_refused(serve_env, capsys, argv):
    assert main(argv) == 2
    _one_line(capsys.readouterr().err)


async def test_json_before_a_subcommand_is_honoured(env, capsys):
    assert await fitglue("jobs", "--json", "retry", "99") == 1
    assert json.loads(capsys.readouterr().out) == {"error": "not_found", "message": "no job 99"}


async def test_no_secret_key_is_still_exit_2(monkeypatch, tmp_path, capsys):
    monkeypatch.chdir(tmp_path)
    for key in list(os.environ):
        if key.startswith(("FITGLUE_", "STRAVA_", "SLACK_")):
            monkeypatch.delenv(key)
    monkeypatch.setenv("FITGLUE_SECRET_KEY", SECRET_KEY)
    monkeypatch.setenv("FITGLUE_PORT", "eighty")
    assert await fitglue("link", ALICE) == 2
    assert "FITGLUE_PORT" in _one_line(capsys.readouterr().err)
