"""manifest.yml and `fitglue manifest` describe the app exactly as the code serves it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.commands import COMMAND
from bot.http import EVENTS_PATH
from bot.manifest import PLACEHOLDER_URL, build_manifest
from service.app.cli import main
from service.app.factory import build_app
from service.app.wiring import wire_optional_parts

ROOT = Path(__file__).resolve().parents[2]
BOT_SOURCES = sorted((ROOT / "bot").glob("*.py"))

# The Web API methods the bot may call, and the bot scope each needs.
SCOPE_OF_METHOD = {
    "users_lookupByEmail": {"users:read.email", "users:read"},  # read.email must come with users:read
    "usergroups_users_list": {"usergroups:read"},
    "conversations_open": {"im:write"},
    "chat_postMessage": {"chat:write"},
    "views_publish": set(),
    # the bulk Connect links' CSV for the asking agent (Slack's upload flow, files_upload_v2's steps)
    "files_getUploadURLExternal": {"files:write"},
    "files_completeUploadExternal": {"files:write"},
}


def web_api_methods_called() -> set[str]:
    called = set()
    for path in BOT_SOURCES:
        called |= set(re.findall(r"client\.([a-z]+_[A-Za-z0-9_]+)\(", path.read_text()))
    return called


def urls_in(manifest: dict[str, Any]) -> list[str]:
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("url", "request_url"):
                    found.append(value)
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(manifest)
    return found


def check_against_code(manifest: dict[str, Any], public_url: str | None) -> None:
    commands = manifest["features"]["slash_commands"]
    assert [c["command"] for c in commands] == [COMMAND]
    assert commands[0]["description"] and commands[0]["usage_hint"]
    for sub in ("diagnose", "link", "refresh", "webhook", "ratelimit", "help"):
        assert sub in commands[0]["usage_hint"]
    called = web_api_methods_called()
    assert called == set(SCOPE_OF_METHOD), f"update SCOPE_OF_METHOD and the manifest for {called}"
    needed = {"commands"}.union(*(SCOPE_OF_METHOD[m] for m in called))
    assert set(manifest["oauth_config"]["scopes"]["bot"]) == needed
    assert manifest["settings"]["event_subscriptions"]["bot_events"] == ["app_home_opened"]
    assert manifest["features"]["app_home"]["home_tab_enabled"] is True
    assert manifest["settings"]["interactivity"]["is_enabled"] is True
    if public_url is None:
        assert manifest["settings"]["socket_mode_enabled"] is True and urls_in(manifest) == []
    else:
        assert manifest["settings"]["socket_mode_enabled"] is False
        assert urls_in(manifest) == [f"{public_url}{EVENTS_PATH}"] * 3


def test_root_manifest_is_the_http_manifest_with_placeholder_host() -> None:
    manifest = yaml.safe_load((ROOT / "manifest.yml").read_text())
    assert manifest == build_manifest(PLACEHOLDER_URL)
    check_against_code(manifest, PLACEHOLDER_URL)


def run_manifest_cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: Any, **env: str) -> dict[str, Any]:
    monkeypatch.chdir(tmp_path)  # no .env from the working directory
    for name in ("SLACK_APP_TOKEN", "SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "FITGLUE_PUBLIC_URL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(["manifest"]) == 0
    return yaml.safe_load(capsys.readouterr().out)


def test_fitglue_manifest_http_mode(monkeypatch, tmp_path, capsys) -> None:
    manifest = run_manifest_cli(monkeypatch, tmp_path, capsys, FITGLUE_PUBLIC_URL="https://support.fitglue.app/")
    check_against_code(manifest, "https://support.fitglue.app")


def test_fitglue_manifest_socket_mode(monkeypatch, tmp_path, capsys) -> None:
    manifest = run_manifest_cli(monkeypatch, tmp_path, capsys, SLACK_APP_TOKEN="xapp-1-test",
                                FITGLUE_PUBLIC_URL="https://support.fitglue.app")
    check_against_code(manifest, None)


async def test_the_manifest_url_is_a_route_the_service_serves(bot_runtime) -> None:
    app = build_app(bot_runtime, background=False)
    await wire_optional_parts(app, bot_runtime)
    served = {(r.method, r.resource.canonical) for r in app.router.routes() if r.resource is not None}
    assert ("POST", EVENTS_PATH) in served


@pytest.mark.parametrize(("env", "warned"), [
    ({"FITGLUE_PUBLIC_URL": "http://localhost:8080"}, True),
    ({}, True),  # the default public URL is http://localhost:8080
    ({"FITGLUE_PUBLIC_URL": "https://support.fitglue.app"}, False),
    ({"FITGLUE_PUBLIC_URL": "http://localhost:8080", "SLACK_APP_TOKEN": "xapp-1"}, False),  # Socket Mode: no URLs
])
def test_fitglue_manifest_warns_on_stderr_when_slack_could_not_reach_it(monkeypatch, tmp_path, capsys, env,
                                                                        warned) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("SLACK_APP_TOKEN", "SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "FITGLUE_PUBLIC_URL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(["manifest"]) == 0
    out, err = capsys.readouterr()
    assert isinstance(yaml.safe_load(out), dict)  # standard output is still the manifest alone
    assert ("https://" in err and "warning" in err) is warned
    assert err == "" or warned
