"""How the bot is mounted, or not, depending on the Slack settings."""

from __future__ import annotations

import logging

import pytest

from bot import slack_mode
from bot.alerts import SlackAlerts
from bot.socket import SOCKET_HANDLER
from service.app.factory import build_app
from service.app.wiring import wire_optional_parts
from service.core.incidents import IncidentAlerts
from service.core.runtime import LogAlerts
from service.core.settings import ConfigError, Settings


def settings(**values: object) -> Settings:
    return Settings.from_values(**values)


def test_mode_follows_the_settings() -> None:
    assert slack_mode(settings()) is None
    assert slack_mode(settings(slack_bot_token="xoxb", slack_signing_secret="s")) == "http"
    assert slack_mode(settings(slack_bot_token="xoxb", slack_app_token="xapp")) == "socket"
    assert slack_mode(settings(slack_bot_token="xoxb", slack_signing_secret="s", slack_app_token="xapp")) == "socket"


@pytest.mark.parametrize(("values", "missing"), [
    ({"slack_bot_token": "xoxb"}, "SLACK_SIGNING_SECRET"),
    ({"slack_signing_secret": "s"}, "SLACK_BOT_TOKEN"),
    ({"slack_app_token": "xapp"}, "SLACK_BOT_TOKEN"),
])
def test_half_a_configuration_stops_the_start(values: dict, missing: str) -> None:
    with pytest.raises(ConfigError) as caught:
        slack_mode(settings(**values))
    assert caught.value.names == (missing,) and missing in str(caught.value)


async def test_no_slack_settings_no_bot_and_it_is_logged(runtime, caplog) -> None:
    caplog.set_level(logging.INFO)
    app = build_app(runtime, background=False)
    await wire_optional_parts(app, runtime)
    assert "/slack/events" not in {r.resource.canonical for r in app.router.routes() if r.resource}
    assert "Slack bot off" in caplog.text
    assert isinstance(runtime.alerts, LogAlerts)


async def test_bot_token_without_secret_fails_at_wiring(runtime) -> None:
    runtime.settings = runtime.settings.replaced(slack_bot_token="xoxb-x")
    with pytest.raises(ConfigError):
        await wire_optional_parts(build_app(runtime, background=False), runtime)


async def test_socket_mode_registers_a_connection_instead_of_a_route(runtime) -> None:
    runtime.settings = runtime.settings.replaced(slack_bot_token="xoxb-x", slack_app_token="xapp-x",
                                           alert_channel="CALERTS")
    app = build_app(runtime, background=False)
    before = len(app.cleanup_ctx)
    await wire_optional_parts(app, runtime)
    assert len(app.cleanup_ctx) == before + 1
    assert "/slack/events" not in {r.resource.canonical for r in app.router.routes() if r.resource}
    assert SOCKET_HANDLER not in app  # connects only when the app starts
    assert isinstance(runtime.alerts, IncidentAlerts) and isinstance(runtime.alerts.poster, SlackAlerts)


def test_serve_exits_2_on_half_a_slack_configuration(monkeypatch, tmp_path, capsys) -> None:
    from service.app.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("service.app.cli.serve_cmd.configure_logging", lambda *a, **k: None)  # keep pytest's handlers
    for name, value in {"FITGLUE_SECRET_KEY": "k" * 32, "STRAVA_CLIENT_ID": "1", "STRAVA_CLIENT_SECRET": "s",
                        "STRAVA_WEBHOOK_VERIFY_TOKEN": "v", "SLACK_BOT_TOKEN": "xoxb-1",
                        "FITGLUE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}",
                        "FITGLUE_PORT": "0"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("SLACK_SIGNING_SECRET", raising=False)
    monkeypatch.delenv("SLACK_APP_TOKEN", raising=False)
    assert main(["serve"]) == 2
    assert "SLACK_SIGNING_SECRET" in capsys.readouterr().err


async def test_no_bolt_warning_at_start_even_with_the_token_in_the_environment(runtime, monkeypatch, caplog) -> None:
    """Bolt reads SLACK_BOT_TOKEN from the environment itself and used to warn on every start that it
    would not use it (our `authorize` hands the token to each listener)."""
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-from-the-environment")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "s")
    runtime.settings = runtime.settings.replaced(slack_bot_token="xoxb-from-the-environment", slack_signing_secret="s",
                                                 support_slack_ids=("UAGENT",))
    caplog.set_level(logging.DEBUG)
    await wire_optional_parts(build_app(runtime, background=False), runtime)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


async def test_a_worker_posts_alerts_to_slack_without_any_slack_route(runtime, aiohttp_server) -> None:
    """`fitglue worker` (and the one-process serve's background thread): the Slack Web API client
    for alerts when the bot is configured, nothing when it is not, and no routes either way."""
    from service.app.wiring import wire_worker_parts
    from tests.bot.slack_standin import SlackStandin

    wire_worker_parts(runtime)
    assert isinstance(runtime.alerts, LogAlerts)  # no Slack settings: alerts go to the log
    slack = SlackStandin()
    server = await aiohttp_server(slack.app())
    runtime.settings = runtime.settings.replaced(
        slack_bot_token="xoxb-x", slack_signing_secret="s", alert_channel="CALERTS",
        slack_api_url=str(server.make_url("/api/")))
    wire_worker_parts(runtime)
    assert isinstance(runtime.alerts, IncidentAlerts) and isinstance(runtime.alerts.poster, SlackAlerts)
    await runtime.alerts.alert("budget_high", "the read budget is at 95 %")
    [posted] = await slack.wait_for_call("chat.postMessage")
    assert posted.params["channel"] == "CALERTS" and posted.token == "xoxb-x"
    slack.release()


def test_a_worker_stops_at_start_on_half_a_slack_configuration(runtime) -> None:
    from service.app.wiring import wire_worker_parts

    runtime.settings = runtime.settings.replaced(slack_signing_secret="s")
    with pytest.raises(ConfigError):
        wire_worker_parts(runtime)
