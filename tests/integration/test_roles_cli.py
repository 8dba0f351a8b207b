"""`fitglue worker` and `fitglue serve --role` say what is wrong in one line with exit status 2,
before anything starts (the same rules as `serve`'s listen address)."""

from __future__ import annotations

import socket

import pytest

from service.app.cli import main
from tests.integration.test_cli_outcomes import _one_line, serve_env  # noqa: F401 - the fixture


@pytest.fixture
def worker_env(serve_env, monkeypatch):  # noqa: F811 - the fixture imported above
    monkeypatch.setattr("service.app.cli.worker_cmd.configure_logging", lambda *a, **k: None)
    return serve_env


@pytest.mark.parametrize("port", ["70000", "-1", "http", "²"])
def test_worker_with_a_bad_health_port_is_one_line_exit_2(worker_env, capsys, port):
    assert main(["worker", "--health-port", port]) == 2
    assert "--health-port" in _one_line(capsys.readouterr().err)


def test_worker_on_a_health_port_in_use_is_one_line_exit_2(worker_env, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["worker", "--health-port", str(port)]) == 2
    line = _one_line(capsys.readouterr().err)
    assert f"127.0.0.1:{port}" in line and "--health-port" in line


def test_worker_names_every_missing_setting(worker_env, monkeypatch, capsys):
    monkeypatch.delenv("STRAVA_CLIENT_ID")
    monkeypatch.delenv("FITGLUE_SECRET_KEY")
    assert main(["worker"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "FITGLUE_SECRET_KEY" in line and "STRAVA_CLIENT_ID" in line and "STRAVA_WEBHOOK_VERIFY_TOKEN" not in line


def test_serve_refuses_an_unknown_role(worker_env, capsys):
    assert main(["serve", "--role", "worker"]) == 2
    assert "--role" in _one_line(capsys.readouterr().err)


def test_the_sandbox_is_one_process(worker_env, capsys):
    assert main(["serve", "--sandbox", "--role", "web"]) == 2
    assert "--role" in _one_line(capsys.readouterr().err)
