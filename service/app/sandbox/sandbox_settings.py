"""The sandbox's settings, and the `export` line that points the CLI at a running sandbox.

What the sandbox decides for itself (every value the export line sets): the database (in the
sandbox folder, unless FITGLUE_DATABASE_URL is given), the secret key, the webhook verify token and
the admin token (generated; kept in the folder with `--sandbox-dir`), the public URL (this port, unless
FITGLUE_PUBLIC_URL is given), the stand-in's credentials and URLs, and the app's athlete capacity.

A shell that sourced the export line holds the stand-in's own credentials: those are recognised,
and everything the line set is decided afresh (the old sandbox's folder, ports and secrets are gone).
Any other Strava credentials are refused: the sandbox never talks to the real Strava.
"""

from __future__ import annotations

import json
import os
import shlex
import socket
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from service.app.sandbox.folder import SandboxFolder
from service.core.crypto import generate_events_secret, generate_secret
from service.core.settings import ENV_BY_FIELD, ConfigError, Settings, reveal
from standin import StandinConfig

# The fields the export line sets, in the order it lists them (every setting the CLI needs).
EXPORTED_FIELDS = ("database_url", "secret_key", "public_url", "strava_client_id", "strava_client_secret",
                   "strava_webhook_verify_token", "strava_oauth_url", "strava_api_url", "admin_token",
                   "strava_athlete_capacity")
# Strava starts a new app at 1 athlete, then 10 after the first upgrade (DESIGN.md): room to try a few.
DEFAULT_CAPACITY = 10
SECRETS_FILE = "secrets.json"
EXPORT_FILE = "sandbox.env"


@dataclass(frozen=True)
class SandboxSecrets:
    """Generated once per sandbox; with `--sandbox-dir` kept in the folder (mode 600) for the next run."""

    secret_key: str
    verify_token: str
    admin_token: str
    slack_signing_secret: str
    slack_bot_token: str
    events_secret: str  # signs FitGlue's outbound events to the stand-in's receiver (whsec_…)

    @classmethod
    def new(cls) -> SandboxSecrets:
        return cls(generate_secret(), generate_secret(), generate_secret(), generate_secret(),
                   "xoxb-sandbox-" + generate_secret()[:24], generate_events_secret())

    @classmethod
    def for_folder(cls, folder: SandboxFolder) -> SandboxSecrets:
        path = folder.file(SECRETS_FILE)
        if not folder.temporary and path.exists():
            try:
                # A secret added in a later version is made now (and kept from now on).
                kept = {**asdict(cls.new()), **json.loads(path.read_text())}
                secrets = cls(**kept)
                _write_private(path, json.dumps(asdict(secrets)))
                return secrets
            except (ValueError, TypeError) as exc:
                raise ConfigError(f"{path} is not a sandbox's secrets file ({exc}); remove it, or choose "
                                  "another --sandbox-dir") from None
        secrets = cls.new()
        if not folder.temporary:
            _write_private(path, json.dumps(asdict(secrets)))
        return secrets


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # the mode above applies only to a new file: an existing one may be readable by others
    with os.fdopen(fd, "w") as out:
        out.write(text)


def uses_standin_credentials(settings: Settings) -> bool:
    """The Strava credentials are the stand-in's own (a shell that sourced a sandbox's export line)."""
    return (settings.strava_client_id == StandinConfig.client_id
            and reveal(settings.strava_client_secret) == StandinConfig.client_secret)


def check_no_real_strava(settings: Settings) -> None:
    """Raise ConfigError when real Strava credentials are configured."""
    if (settings.strava_client_id or settings.strava_client_secret) and not uses_standin_credentials(settings):
        raise ConfigError("--sandbox refuses to run while real Strava credentials are configured "
                          "(unset STRAVA_CLIENT_ID and STRAVA_CLIENT_SECRET)",
                          ["STRAVA_CLIENT_ID", "STRAVA_CLIENT_SECRET"])


def without_earlier_export(settings: Settings) -> Settings:
    """The settings with whatever an earlier sandbox's export line set treated as not given."""
    if not uses_standin_credentials(settings):
        return settings
    given = settings.model_dump(exclude_unset=True)
    return Settings.from_values(**{name: value for name, value in given.items() if name not in EXPORTED_FIELDS})


def free_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def sandbox_settings(settings: Settings, folder: SandboxFolder, secrets: SandboxSecrets, standin_base: str,
                     capacity: int, slack: dict[str, Any], events_url: str) -> Settings:
    """``settings`` (from the environment, an earlier export already dropped) made into the sandbox's.
    ``slack`` holds the local Slack's settings (SLACK_*, the support ids, the alert channel);
    ``events_url`` is the stand-in's receiver of FitGlue's outbound events."""
    given = settings.model_fields_set
    port = settings.port or free_port(settings.host)  # --port 0: the export line needs the real port
    changes: dict[str, Any] = {
        "sandbox": True,
        "port": port,
        "strava_client_id": StandinConfig.client_id,
        "strava_client_secret": StandinConfig.client_secret,
        "strava_oauth_url": f"{standin_base}/oauth",
        "strava_api_url": f"{standin_base}/api/v3",
        "strava_webhook_verify_token": settings.strava_webhook_verify_token or secrets.verify_token,
        "strava_athlete_capacity": capacity,
        "admin_token": settings.admin_token or secrets.admin_token,
        "slack_app_token": None,
        **slack,
    }
    if not settings.events_url:  # FitGlue's other services are stood in too, unless a receiver is given
        changes["events_url"], changes["events_secret"] = events_url, secrets.events_secret
    if "public_url" not in given:
        host = "localhost" if settings.host in ("127.0.0.1", "localhost", "0.0.0.0", "::") else settings.host
        changes["public_url"] = f"http://{host}:{port}"
    if "database_url" not in given:
        changes["database_url"] = f"sqlite+aiosqlite:///{folder.file('fitglue.db')}"
        changes["secret_key"] = secrets.secret_key
    elif not settings.secret_key:
        changes["secret_key"] = secrets.secret_key
    return settings.replaced(**changes)


def export_values(settings: Settings) -> dict[str, str]:
    """Environment variable -> value, for every setting the CLI needs to reach this sandbox."""
    values = {}
    for name in EXPORTED_FIELDS:
        value = getattr(settings, name)
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        values[ENV_BY_FIELD[name]] = "" if text is None else str(text)  # empty: unset (no capacity limit)
    return values


def export_line(settings: Settings) -> str:
    return "export " + " ".join(f"{name}={shlex.quote(value)}" for name, value in export_values(settings).items())


def write_export_file(folder: SandboxFolder, settings: Settings) -> Path:
    """`source` it in a shell to point `fitglue` at this sandbox. Rewritten when a setting it holds
    changes (the app's athlete capacity, from the stand-in's control page)."""
    path = folder.file(EXPORT_FILE)
    lines = [f"# FitGlue sandbox at {settings.public_url}: `source {path}` points fitglue at it", export_line(settings)]
    _write_private(path, "\n".join(lines) + "\n")
    return path
