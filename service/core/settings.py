"""Settings from the environment and `.env`, exactly as DESIGN.md's configuration table names them.

An empty value counts as missing. Each command asks only for the settings it uses
(`require(...)`), so `fitglue diagnose` works without Slack and `serve` names every gap at once.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from service.core.inputs import MAX_ID, MAX_PORT, BadInput, parse_whole_number

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///fitglue.db"


class ConfigError(Exception):
    """A missing or bad setting. The CLI turns it into exit status 2."""

    def __init__(self, message: str, names: Iterable[str] = ()) -> None:
        super().__init__(message)
        self.names = tuple(names)


def read_dotenv(path: Path) -> dict[str, str]:
    """Parse KEY=VALUE lines; `#` comments, optional quotes and `export ` prefixes are allowed."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        if line.startswith("export "):
            line = line[len("export ") :]
        key, _, value = line.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def _split_csv(value: str | None) -> tuple[str, ...]:
    if not value:
        return ()
    return tuple(part.strip() for part in value.split(",") if part.strip())


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    public_url: str = "http://localhost:8080"
    host: str = "127.0.0.1"
    port: int = 8080
    secret_key: str | None = None
    previous_secret_keys: tuple[str, ...] = ()
    strava_client_id: str | None = None
    strava_client_secret: str | None = None
    strava_webhook_verify_token: str | None = None
    strava_oauth_url: str = "https://www.strava.com/oauth"
    strava_api_url: str = "https://www.strava.com/api/v3"
    strava_athlete_capacity: int | None = None
    slack_bot_token: str | None = None
    slack_signing_secret: str | None = None
    slack_app_token: str | None = None
    slack_api_url: str = "https://slack.com/api/"
    support_slack_ids: tuple[str, ...] = ()
    alert_channel: str | None = None
    admin_token: str | None = None
    refresh_interval_s: int = 300
    refresh_margin_s: int = 3600
    link_ttl_s: int = 604800
    log_level: str = "INFO"
    log_format: str = "text"
    rate_limit_warn_pct: int = 80
    webhook_silent_days: int = 14
    rate_limit_reserve_pct: int = 10
    job_max_attempts: int = 8
    job_lease_s: int = 60
    retention_days: int = 30
    # Retention of the other tables that grow with traffic (days; see service/retention.py).
    failed_retention_days: int = 90
    attempt_retention_days: int = 30
    link_retention_days: int = 30
    registration_retention_days: int = 90
    audit_retention_days: int = 365
    dead_grant_retention_days: int = 7
    retention_interval_s: int = 3600
    worker_concurrency: int = 8
    refresh_concurrency: int = 8
    catch_up_lookback_s: int = 86400
    not_found_memo_s: int = 86400
    unconfirmed_calls_per_athlete: int = 10
    # Connect flow (issue 9): how long a browser can reload its result page; caps on sign-in attempts.
    connect_result_ttl_s: int = 86400
    connect_attempts_per_link: int = 10
    connect_attempts_per_user: int = 30
    connect_attempt_window_s: int = 3600
    slack_timeout_s: float = 10.0  # one Slack Web API call, start to answer
    body_read_timeout_s: int = 10
    sandbox: bool = False
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def oauth_callback_url(self) -> str:
        return f"{self.public_url}/oauth/strava/callback"

    @property
    def webhook_callback_url(self) -> str:
        return f"{self.public_url}/webhooks/strava"

    @property
    def strava_configured(self) -> bool:
        return bool(self.strava_client_id and self.strava_client_secret)

    @property
    def secure_cookies(self) -> bool:
        return self.public_url.startswith("https://")

    def require(self, *names: str) -> None:
        """Raise one ConfigError naming every listed environment variable that is missing."""
        missing = [name for name in names if not getattr(self, _ATTR_BY_ENV[name])]
        if missing:
            raise ConfigError(
                "missing required setting(s): " + ", ".join(missing)
                + " (set them in the environment or in .env; `fitglue init` writes a template)",
                missing,
            )


# Environment variable -> Settings attribute, for the ones `require` can name.
_ATTR_BY_ENV = {
    "FITGLUE_SECRET_KEY": "secret_key",
    "STRAVA_CLIENT_ID": "strava_client_id",
    "STRAVA_CLIENT_SECRET": "strava_client_secret",
    "STRAVA_WEBHOOK_VERIFY_TOKEN": "strava_webhook_verify_token",
    "FITGLUE_DATABASE_URL": "database_url",
}

SERVE_REQUIRES = ("FITGLUE_SECRET_KEY", "STRAVA_CLIENT_ID", "STRAVA_CLIENT_SECRET", "STRAVA_WEBHOOK_VERIFY_TOKEN")


def _int(env: Mapping[str, str], name: str, default: int | None, minimum: int = 0,
         maximum: int | None = None) -> int | None:
    """ASCII digits only (service.core.inputs' rule for every number from outside), minimum..maximum."""
    raw = env.get(name)
    if not raw:
        return default
    try:
        return parse_whole_number(raw.strip(), name, low=minimum, high=MAX_ID if maximum is None else maximum)
    except BadInput as exc:
        raise ConfigError(str(exc), [name]) from None


# The retention settings in days (Settings attribute -> variable, default); the audit log's is the longest.
RETENTION_DAYS = {
    "retention_days": ("FITGLUE_RETENTION_DAYS", 30),
    "failed_retention_days": ("FITGLUE_FAILED_RETENTION_DAYS", 90),
    "attempt_retention_days": ("FITGLUE_ATTEMPT_RETENTION_DAYS", 30),
    "link_retention_days": ("FITGLUE_LINK_RETENTION_DAYS", 30),
    "registration_retention_days": ("FITGLUE_REGISTRATION_RETENTION_DAYS", 90),
    "dead_grant_retention_days": ("FITGLUE_DEAD_GRANT_RETENTION_DAYS", 7),
    "audit_retention_days": ("FITGLUE_AUDIT_RETENTION_DAYS", 365),
}


def _retention(env: Mapping[str, str]) -> dict[str, int]:
    """The retention settings in days, by Settings attribute. The audit log must be kept at least as
    long as anything else: it is what remains to explain what happened to the rows that are gone."""
    days = {attr: _int(env, name, default, 1) or default for attr, (name, default) in RETENTION_DAYS.items()}
    longest = max(value for attr, value in days.items() if attr != "audit_retention_days")
    if days["audit_retention_days"] < longest:
        raise ConfigError(f"FITGLUE_AUDIT_RETENTION_DAYS must be at least the longest other retention "
                          f"({longest} days), got {days['audit_retention_days']}", ["FITGLUE_AUDIT_RETENTION_DAYS"])
    return days


def load_settings(environ: Mapping[str, str] | None = None, dotenv: Path | None = None) -> Settings:
    """Environment wins over `.env`; empty values are treated as unset."""
    env_file = read_dotenv(dotenv if dotenv is not None else Path.cwd() / ".env")
    merged = {k: v for k, v in env_file.items() if v != ""}
    merged.update({k: v for k, v in (os.environ if environ is None else environ).items() if v != ""})

    def get(name: str, default: str | None = None) -> str | None:
        return merged.get(name, default)

    log_format = (get("FITGLUE_LOG_FORMAT", "text") or "text").lower()
    if log_format not in ("text", "json"):
        raise ConfigError(f"FITGLUE_LOG_FORMAT must be 'text' or 'json', got {log_format!r}", ["FITGLUE_LOG_FORMAT"])
    public_url = (get("FITGLUE_PUBLIC_URL", "http://localhost:8080") or "").rstrip("/")
    if not public_url.startswith(("http://", "https://")):
        raise ConfigError("FITGLUE_PUBLIC_URL must start with http:// or https://", ["FITGLUE_PUBLIC_URL"])
    warn_pct = _int(merged, "FITGLUE_RATE_LIMIT_WARN_PCT", 80, 1)
    if warn_pct is not None and warn_pct > 100:
        raise ConfigError("FITGLUE_RATE_LIMIT_WARN_PCT must be between 1 and 100", ["FITGLUE_RATE_LIMIT_WARN_PCT"])
    retention = _retention(merged)

    return Settings(
        database_url=get("FITGLUE_DATABASE_URL", DEFAULT_DATABASE_URL) or DEFAULT_DATABASE_URL,
        public_url=public_url,
        host=get("FITGLUE_HOST", "127.0.0.1") or "127.0.0.1",
        port=_int(merged, "FITGLUE_PORT", 8080, 0, MAX_PORT) or 0,
        secret_key=get("FITGLUE_SECRET_KEY"),
        previous_secret_keys=_split_csv(get("FITGLUE_PREVIOUS_SECRET_KEYS")),
        strava_client_id=get("STRAVA_CLIENT_ID"),
        strava_client_secret=get("STRAVA_CLIENT_SECRET"),
        strava_webhook_verify_token=get("STRAVA_WEBHOOK_VERIFY_TOKEN"),
        strava_oauth_url=(get("STRAVA_OAUTH_URL", "https://www.strava.com/oauth") or "").rstrip("/"),
        strava_api_url=(get("STRAVA_API_URL", "https://www.strava.com/api/v3") or "").rstrip("/"),
        strava_athlete_capacity=_int(merged, "FITGLUE_STRAVA_ATHLETE_CAPACITY", None, 1),
        slack_bot_token=get("SLACK_BOT_TOKEN"),
        slack_signing_secret=get("SLACK_SIGNING_SECRET"),
        slack_app_token=get("SLACK_APP_TOKEN"),
        slack_api_url=get("SLACK_API_URL", "https://slack.com/api/") or "https://slack.com/api/",
        support_slack_ids=_split_csv(get("FITGLUE_SUPPORT_SLACK_IDS")),
        alert_channel=get("FITGLUE_ALERT_CHANNEL"),
        admin_token=get("FITGLUE_ADMIN_TOKEN"),
        refresh_interval_s=_int(merged, "FITGLUE_REFRESH_INTERVAL_S", 300, 1) or 300,
        refresh_margin_s=_int(merged, "FITGLUE_REFRESH_MARGIN_S", 3600, 0) or 0,
        link_ttl_s=_int(merged, "FITGLUE_LINK_TTL_S", 604800, 1) or 604800,
        log_level=(get("FITGLUE_LOG_LEVEL", "INFO") or "INFO").upper(),
        log_format=log_format,
        rate_limit_warn_pct=warn_pct or 80,
        webhook_silent_days=_int(merged, "FITGLUE_WEBHOOK_SILENT_DAYS", 14, 1) or 14,
        rate_limit_reserve_pct=_int(merged, "FITGLUE_RATE_LIMIT_RESERVE_PCT", 10, 0) or 0,
        job_max_attempts=_int(merged, "FITGLUE_JOB_MAX_ATTEMPTS", 8, 1) or 8,
        job_lease_s=_int(merged, "FITGLUE_JOB_LEASE_S", 60, 1) or 60,
        retention_days=retention["retention_days"],
        failed_retention_days=retention["failed_retention_days"],
        attempt_retention_days=retention["attempt_retention_days"],
        link_retention_days=retention["link_retention_days"],
        registration_retention_days=retention["registration_retention_days"],
        audit_retention_days=retention["audit_retention_days"],
        dead_grant_retention_days=retention["dead_grant_retention_days"],
        retention_interval_s=_int(merged, "FITGLUE_RETENTION_INTERVAL_S", 3600, 60) or 3600,
        worker_concurrency=_int(merged, "FITGLUE_WORKER_CONCURRENCY", 8, 1) or 8,
        refresh_concurrency=_int(merged, "FITGLUE_REFRESH_CONCURRENCY", 8, 1) or 8,
        catch_up_lookback_s=_int(merged, "FITGLUE_CATCH_UP_LOOKBACK_S", 86400, 0) or 0,
        not_found_memo_s=_int(merged, "FITGLUE_NOT_FOUND_MEMO_S", 86400, 0) or 0,
        unconfirmed_calls_per_athlete=_int(merged, "FITGLUE_UNCONFIRMED_CALLS_PER_ATHLETE", 10, 1) or 10,
        connect_result_ttl_s=_int(merged, "FITGLUE_CONNECT_RESULT_TTL_S", 86400, 600) or 86400,
        connect_attempts_per_link=_int(merged, "FITGLUE_CONNECT_ATTEMPTS_PER_LINK", 10, 1) or 10,
        connect_attempts_per_user=_int(merged, "FITGLUE_CONNECT_ATTEMPTS_PER_USER", 30, 1) or 30,
        connect_attempt_window_s=_int(merged, "FITGLUE_CONNECT_ATTEMPT_WINDOW_S", 3600, 1) or 3600,
        slack_timeout_s=_int(merged, "FITGLUE_SLACK_TIMEOUT_S", 10, 1) or 10,
        body_read_timeout_s=_int(merged, "FITGLUE_BODY_READ_TIMEOUT_S", 10, 1) or 10,
        extra=dict(merged),
    )
