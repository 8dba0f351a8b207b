"""Starting and stopping what a sandbox runs beside the service: the Strava stand-in (and the local
Slack), on loopback ports of their own."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from sandbox_slack import AGENT, ALERTS_CHANNEL, LocalSlack, start_local_slack
from service.app.sandbox.folder import SandboxFolder
from service.app.sandbox.sandbox_settings import (
    DEFAULT_CAPACITY,
    SandboxSecrets,
    sandbox_settings,
    write_export_file,
)
from service.core.settings import ConfigError, Settings, reveal
from standin import StandinConfig, StravaStandin, start_standin

log = logging.getLogger("fitglue.sandbox")

STANDIN_STATE_FILE = "standin.json"


@dataclass
class Sandbox:
    """A running sandbox: its folder, the service's settings, the stand-ins."""

    folder: SandboxFolder
    settings: Settings
    standin: StravaStandin
    standin_base: str
    slack: LocalSlack
    slack_url: str

    def write_export(self) -> str:
        return str(write_export_file(self.folder, self.settings))


@asynccontextmanager
async def running_sandbox(settings: Settings, folder: SandboxFolder) -> AsyncIterator[Sandbox]:
    """Start the stand-ins; yields the Sandbox whose ``settings`` the service runs with. On the way
    out, a kept folder gets the stand-in's world, so the next run finds the athletes it connected."""
    secrets = SandboxSecrets.for_folder(folder)
    capacity = settings.strava_athlete_capacity or DEFAULT_CAPACITY
    state_file = folder.file(STANDIN_STATE_FILE)
    async with AsyncExitStack() as stack:  # whatever started is stopped, a failed start included
        standin, standin_runner, standin_base = await start_standin(
            "127.0.0.1", 0, config=StandinConfig(athlete_capacity=capacity))
        stack.push_async_callback(standin_runner.cleanup)
        slack = LocalSlack(bot_token=secrets.slack_bot_token, signing_secret=secrets.slack_signing_secret)
        slack_runner, slack_base = await start_local_slack(slack)
        stack.push_async_callback(slack_runner.cleanup)
        if not folder.temporary:
            _carry_on(standin, state_file)
            stack.callback(standin.save, state_file)
        sandbox_config = sandbox_settings(settings, folder, secrets, standin_base, capacity, {
            "slack_bot_token": secrets.slack_bot_token, "slack_signing_secret": secrets.slack_signing_secret,
            "slack_api_url": f"{slack_base}/api/", "support_slack_ids": (AGENT,), "alert_channel": ALERTS_CHANNEL},
            f"{standin_base}{standin.events.path}")
        standin.events.secret = reveal(sandbox_config.events_secret)
        # The local Slack relays to the service on loopback, whatever public URL it announces.
        slack.point_at(f"http://127.0.0.1:{sandbox_config.port}/slack/events")
        yield Sandbox(folder, sandbox_config, standin, standin_base, slack, f"{slack_base}/")


def _carry_on(standin: StravaStandin, state_file: Path) -> None:
    """A kept folder's stand-in world, read back (ConfigError when the file is not one)."""
    try:
        if standin.restore(state_file):
            log.info("the Strava stand-in carries on from %s", state_file)
    except ValueError as exc:
        raise ConfigError(f"{state_file} is not a saved stand-in ({exc}); remove it, or choose another "
                          "--sandbox-dir") from None
