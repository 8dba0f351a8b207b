"""`fitglue serve --sandbox` as a new user meets it: one start, and the export line it prints points the
command line at it; its temporary folder goes however it ends (issue 14)."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import aiohttp
import pytest

from tests.e2e.procs import fitglue, free_port
from tests.e2e.sandbox_proc import (
    SandboxProcess,
    connect_in_browser,
    exported,
    sandbox_env,
    sandbox_folders,
)

pytestmark = pytest.mark.e2e

EMAIL = "sandbox-athlete@example.com"


def last_line(path: str) -> str:
    return Path(path).read_text().splitlines()[-1]


def cli(args: list[str], env: dict[str, str], cwd) -> tuple[int, dict]:
    done = fitglue([*args, "--json"], env, cwd)
    return done.returncode, json.loads(done.stdout) if done.stdout.strip() else {"stderr": done.stderr}


async def test_the_export_line_points_every_command_at_the_running_sandbox(tmp_path):
    env = sandbox_env(tmp_path)
    sandbox = SandboxProcess(env, tmp_path)
    try:
        shown = await sandbox.announced()
        cli_env = {**env, **exported(shown["export"])}
        assert set(exported(shown["export"])) == {
            "FITGLUE_DATABASE_URL", "FITGLUE_SECRET_KEY", "FITGLUE_PUBLIC_URL", "STRAVA_CLIENT_ID",
            "STRAVA_CLIENT_SECRET", "STRAVA_WEBHOOK_VERIFY_TOKEN", "STRAVA_OAUTH_URL", "STRAVA_API_URL",
            "FITGLUE_ADMIN_TOKEN", "FITGLUE_STRAVA_ATHLETE_CAPACITY"}
        assert cli_env["FITGLUE_PUBLIC_URL"].endswith(f":{sandbox.port}")
        # the file says the same as the line
        assert exported(last_line(shown["source"])) == exported(shown["export"])

        assert "Connected" in await connect_in_browser(shown["Connect link"])
        code, diagnosis = cli(["diagnose", EMAIL], cli_env, tmp_path)
        assert code == 0 and diagnosis["status"] == "connected", diagnosis
        code, link = cli(["link", "new-runner@example.com"], cli_env, tmp_path)
        assert code == 0 and link["url"].startswith(cli_env["FITGLUE_PUBLIC_URL"])
        code, refreshed = cli(["refresh", EMAIL], cli_env, tmp_path)
        assert code == 0 and refreshed["status"] == "connected", refreshed
        code, webhook = cli(["webhook", "status"], cli_env, tmp_path)
        assert code == 0 and "subscription" in webhook, webhook
        code, budget = cli(["ratelimit"], cli_env, tmp_path)
        assert code == 0 and "read" in budget
        code, jobs = cli(["jobs"], cli_env, tmp_path)
        assert code == 0, jobs
        code, events = cli(["events"], cli_env, tmp_path)  # issue 12's hand-off, where it exists
        assert code == 0 and "events" in events, events

        # the admin API is on, with the generated token
        async with aiohttp.ClientSession() as http:
            headers = {"Authorization": f"Bearer {cli_env['FITGLUE_ADMIN_TOKEN']}"}
            async with http.get(f"{shown['Admin API']}/rate-limit", headers=headers) as answer:
                assert answer.status == 200
            async with http.get(f"{sandbox.url}/") as index:
                page = await index.text()
                assert index.status == 200 and shown["Connect link"].replace("&", "&amp;") in page
                assert cli_env["FITGLUE_ADMIN_TOKEN"] in page and shown["Strava controls"] in page
        assert len(sandbox_folders(tmp_path)) == 1
    finally:
        code = sandbox.stop(signal.SIGTERM)
    assert code == 0, sandbox.output()
    assert sandbox_folders(tmp_path) == []  # SIGTERM removed the temporary folder
    log_lines = [line for line in sandbox.output().splitlines() if " INFO " in line or " WARNING " in line
                 or " ERROR " in line]
    for secret in ("FITGLUE_SECRET_KEY", "FITGLUE_ADMIN_TOKEN", "STRAVA_WEBHOOK_VERIFY_TOKEN"):
        assert not [line for line in log_lines if cli_env[secret] in line]  # the banner shows them, logs never


async def test_sigint_removes_the_folder_and_a_sourced_shell_starts_a_fresh_sandbox(tmp_path):
    env = sandbox_env(tmp_path)
    first = SandboxProcess(env, tmp_path)
    try:
        shown = await first.announced()
    finally:
        first.stop(signal.SIGINT)
    assert sandbox_folders(tmp_path) == []
    # A shell that sourced the line holds the stand-in's credentials: recognised, not refused.
    again = SandboxProcess({**env, **exported(shown["export"])}, tmp_path)
    try:
        shown_again = await again.announced()
        assert exported(shown_again["export"])["FITGLUE_DATABASE_URL"] != exported(shown["export"])["FITGLUE_DATABASE_URL"]
    finally:
        assert again.stop() == 0, again.output()
    assert sandbox_folders(tmp_path) == []


def test_real_strava_credentials_are_still_refused(tmp_path):
    env = sandbox_env(tmp_path, STRAVA_CLIENT_ID="1001", STRAVA_CLIENT_SECRET="a-real-secret")
    done = fitglue(["serve", "--sandbox", "--port", str(free_port())], env, tmp_path, timeout=30)
    assert done.returncode == 2 and "--sandbox refuses" in done.stderr
    assert sandbox_folders(tmp_path) == []


def test_a_failed_start_removes_the_folder(tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    env = sandbox_env(tmp_path, FITGLUE_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/a-file/fitglue.db")
    done = fitglue(["serve", "--sandbox", "--port", str(free_port())], env, tmp_path, timeout=30)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert sandbox_folders(tmp_path) == []


async def test_a_killed_sandbox_folder_goes_at_the_next_start(tmp_path):
    env = sandbox_env(tmp_path)
    killed = SandboxProcess(env, tmp_path)
    await killed.announced()
    killed.stop(signal.SIGKILL)
    [left] = sandbox_folders(tmp_path)
    nxt = SandboxProcess(env, tmp_path)
    try:
        await nxt.announced()
        assert left not in sandbox_folders(tmp_path) and len(sandbox_folders(tmp_path)) == 1
    finally:
        nxt.stop()
    assert sandbox_folders(tmp_path) == []


async def test_sandbox_dir_keeps_the_state_between_runs(tmp_path):
    env = sandbox_env(tmp_path)
    kept = tmp_path / "kept"
    first = SandboxProcess(env, tmp_path, "--sandbox-dir", str(kept))
    try:
        shown = await first.announced()
        await connect_in_browser(shown["Connect link"])
    finally:
        assert first.stop() == 0, first.output()
    assert {"fitglue.db", "secrets.json", "standin.json", "sandbox.env"} <= {p.name for p in kept.iterdir()}
    second = SandboxProcess(env, tmp_path, "--sandbox-dir", str(kept))
    try:
        shown_again = await second.announced()
        cli_env = {**env, **exported(shown_again["export"])}
        assert cli_env["FITGLUE_ADMIN_TOKEN"] == exported(shown["export"])["FITGLUE_ADMIN_TOKEN"]
        code, refreshed = cli(["refresh", EMAIL], cli_env, tmp_path)  # the stand-in still knows the grant
        assert code == 0 and refreshed["status"] == "connected", refreshed
    finally:
        assert second.stop() == 0, second.output()
    assert kept.exists() and sandbox_folders(tmp_path) == []


@pytest.mark.parametrize("folder", ["", "a-file"])
def test_a_sandbox_dir_that_cannot_be_a_folder_is_refused(tmp_path, folder):
    (tmp_path / "a-file").write_text("not a folder")
    done = fitglue(["serve", "--sandbox-dir", folder, "--port", str(free_port())], sandbox_env(tmp_path), tmp_path,
                   timeout=30)
    assert done.returncode == 2 and "--sandbox-dir" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "secrets.json").exists() and sandbox_folders(tmp_path) == []
