"""Settings from the environment and `.env`, exactly as DESIGN.md's configuration table names them.

One pydantic-settings model: each field names its environment variable (`validation_alias`), its
default and its bounds once. The environment wins over `.env` in the working directory; an empty
value counts as missing. Each command asks only for the settings it uses (`require(...)`), so
`fitglue diagnose` works without Slack and `serve` names every gap at once. Secrets are
`SecretStr`: they print as `**********`, and `secret_values()` hands them to the log scrubber.

Build settings in code (tests, benchmarks) with `Settings.from_values(**fields)` and change one with
`settings.replaced(**fields)`: both take field names and validate like the environment does.
Calling `Settings()` directly reads the environment, as `load_settings()` does.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BeforeValidator,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

from service.core.config_errors import BadSetting, ConfigError, config_error
from service.core.inputs import MAX_PORT
from service.core.settings_events import AdminToken, EventsSecret, EventsUrl, RetrySchedule, TokenApiKey
from service.core.settings_fields import DAY_S, MAX_RETENTION_DAYS, EnvInt, EnvSeconds, env_name
from service.core.settings_fields import env as _env
from service.core.settings_sources import contract_sources, environment
from service.core.settings_support import SupportViewSettings

# --- how the environment's text becomes values -------------------------------------------------

def _comma_separated(value: object) -> object:
    """`a, b,,c` -> ("a", "b", "c"); a sequence set in code passes through."""
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


def _without_trailing_slash(value: object) -> object:
    return value.rstrip("/") if isinstance(value, str) else value


# pydantic-settings would decode a list field as JSON; the contract says comma-separated.
CommaList = Annotated[tuple[str, ...], NoDecode, BeforeValidator(_comma_separated)]
SecretList = Annotated[tuple[SecretStr, ...], NoDecode, BeforeValidator(_comma_separated)]
Url = Annotated[str, BeforeValidator(_without_trailing_slash)]
Upper = Annotated[str, BeforeValidator(lambda value: value.upper() if isinstance(value, str) else value)]
LogFormat = Annotated[Literal["text", "json"],
                      BeforeValidator(lambda value: value.lower() if isinstance(value, str) else value)]

# --- the settings ----------------------------------------------------------------------------

# Each field is declared with `_env(variable, default, **bounds)`: settings_fields.env, the helper the
# settings parts (settings_support.py) declare theirs with too. Every number has an upper bound
# (settings_fields.DAY_S says why).

class Settings(SupportViewSettings, BaseSettings):
    """Every setting of the service. Immutable; see the module docstring for how to build one."""

    model_config = SettingsConfigDict(
        frozen=True,
        case_sensitive=True,
        env_file=".env",  # relative: the working directory when the settings are loaded
        env_file_encoding="utf-8",
        env_ignore_empty=True,  # the contract: an empty value counts as missing
        extra="ignore",  # .env and the environment hold other programs' variables too
    )

    database_url: str = _env("FITGLUE_DATABASE_URL", "sqlite+aiosqlite:///fitglue.db")
    public_url: Url = _env("FITGLUE_PUBLIC_URL", "http://localhost:8080")
    host: str = _env("FITGLUE_HOST", "127.0.0.1")
    port: EnvInt = _env("FITGLUE_PORT", 8080, ge=0, le=MAX_PORT)
    secret_key: SecretStr | None = _env("FITGLUE_SECRET_KEY")
    previous_secret_keys: SecretList = _env("FITGLUE_PREVIOUS_SECRET_KEYS", ())
    strava_client_id: str | None = _env("STRAVA_CLIENT_ID")
    strava_client_secret: SecretStr | None = _env("STRAVA_CLIENT_SECRET")
    strava_webhook_verify_token: SecretStr | None = _env("STRAVA_WEBHOOK_VERIFY_TOKEN")
    strava_oauth_url: Url = _env("STRAVA_OAUTH_URL", "https://www.strava.com/oauth")
    strava_api_url: Url = _env("STRAVA_API_URL", "https://www.strava.com/api/v3")
    strava_athlete_capacity: EnvInt | None = _env("FITGLUE_STRAVA_ATHLETE_CAPACITY", None, ge=1, le=10_000_000)
    slack_bot_token: SecretStr | None = _env("SLACK_BOT_TOKEN")
    slack_signing_secret: SecretStr | None = _env("SLACK_SIGNING_SECRET")
    slack_app_token: SecretStr | None = _env("SLACK_APP_TOKEN")
    slack_api_url: str = _env("SLACK_API_URL", "https://slack.com/api/")
    support_slack_ids: CommaList = _env("FITGLUE_SUPPORT_SLACK_IDS", ())
    alert_channel: str | None = _env("FITGLUE_ALERT_CHANNEL")
    admin_token: AdminToken | None = _env("FITGLUE_ADMIN_TOKEN")
    refresh_interval_s: EnvInt = _env("FITGLUE_REFRESH_INTERVAL_S", 300, ge=1, le=DAY_S)
    refresh_margin_s: EnvInt = _env("FITGLUE_REFRESH_MARGIN_S", 3600, ge=0, le=DAY_S)
    link_ttl_s: EnvInt = _env("FITGLUE_LINK_TTL_S", 604800, ge=1, le=90 * DAY_S)
    log_level: Upper = _env("FITGLUE_LOG_LEVEL", "INFO")
    log_format: LogFormat = _env("FITGLUE_LOG_FORMAT", "text")
    rate_limit_warn_pct: EnvInt = _env("FITGLUE_RATE_LIMIT_WARN_PCT", 80, ge=1, le=100)
    webhook_silent_days: EnvInt = _env("FITGLUE_WEBHOOK_SILENT_DAYS", 14, ge=1, le=3650)
    rate_limit_reserve_pct: EnvInt = _env("FITGLUE_RATE_LIMIT_RESERVE_PCT", 10, ge=0, le=100)
    job_max_attempts: EnvInt = _env("FITGLUE_JOB_MAX_ATTEMPTS", 8, ge=1, le=1000)
    job_lease_s: EnvInt = _env("FITGLUE_JOB_LEASE_S", 60, ge=1, le=DAY_S)
    # Retention of the tables that grow with traffic (days; see service/background/retention.py).
    # Every field named *_retention_days takes part in the audit-kept-longest check below.
    retention_days: EnvInt = _env("FITGLUE_RETENTION_DAYS", 30, ge=1, le=MAX_RETENTION_DAYS)
    failed_retention_days: EnvInt = _env("FITGLUE_FAILED_RETENTION_DAYS", 90, ge=1, le=MAX_RETENTION_DAYS)
    attempt_retention_days: EnvInt = _env("FITGLUE_ATTEMPT_RETENTION_DAYS", 30, ge=1, le=MAX_RETENTION_DAYS)
    link_retention_days: EnvInt = _env("FITGLUE_LINK_RETENTION_DAYS", 30, ge=1, le=MAX_RETENTION_DAYS)
    registration_retention_days: EnvInt = _env("FITGLUE_REGISTRATION_RETENTION_DAYS", 90, ge=1, le=MAX_RETENTION_DAYS)
    audit_retention_days: EnvInt = _env("FITGLUE_AUDIT_RETENTION_DAYS", 365, ge=1, le=MAX_RETENTION_DAYS)
    dead_grant_retention_days: EnvInt = _env("FITGLUE_DEAD_GRANT_RETENTION_DAYS", 7, ge=1, le=MAX_RETENTION_DAYS)
    retention_interval_s: EnvInt = _env("FITGLUE_RETENTION_INTERVAL_S", 3600, ge=60, le=7 * DAY_S)
    worker_concurrency: EnvInt = _env("FITGLUE_WORKER_CONCURRENCY", 8, ge=1, le=1000)
    worker_batch_size: EnvInt = _env("FITGLUE_WORKER_BATCH_SIZE", 64, ge=1, le=1000)
    # After a claim that found less than it could take, the next comes this long after it at the earliest.
    worker_gather_ms: EnvInt = _env("FITGLUE_WORKER_GATHER_MS", 50, ge=0, le=1000)
    # While the web intake in the same process is under a burst, the worker claims once per this long.
    worker_busy_pause_ms: EnvInt = _env("FITGLUE_WORKER_BUSY_PAUSE_MS", 100, ge=0, le=1000)
    refresh_concurrency: EnvInt = _env("FITGLUE_REFRESH_CONCURRENCY", 8, ge=1, le=1000)
    catch_up_lookback_s: EnvInt = _env("FITGLUE_CATCH_UP_LOOKBACK_S", 86400, ge=0, le=365 * DAY_S)
    not_found_memo_s: EnvInt = _env("FITGLUE_NOT_FOUND_MEMO_S", 86400, ge=0, le=365 * DAY_S)
    unconfirmed_calls_per_athlete: EnvInt = _env("FITGLUE_UNCONFIRMED_CALLS_PER_ATHLETE", 10, ge=1, le=1_000_000_000)
    # Bounds on what forged (unsigned) events can queue and spend, beyond the per-athlete cap.
    pending_events_per_athlete: EnvInt = _env("FITGLUE_PENDING_EVENTS_PER_ATHLETE", 50, ge=1, le=1_000_000_000)
    unconfirmed_calls_per_window: EnvInt = _env("FITGLUE_UNCONFIRMED_CALLS_PER_WINDOW", 30, ge=1, le=1_000_000_000)
    # Connect flow (issue 9): how long a browser can reload its result page; caps on sign-in attempts.
    connect_result_ttl_s: EnvInt = _env("FITGLUE_CONNECT_RESULT_TTL_S", 86400, ge=600, le=30 * DAY_S)
    connect_attempts_per_link: EnvInt = _env("FITGLUE_CONNECT_ATTEMPTS_PER_LINK", 10, ge=1, le=1_000_000_000)
    connect_attempts_per_user: EnvInt = _env("FITGLUE_CONNECT_ATTEMPTS_PER_USER", 30, ge=1, le=1_000_000_000)
    connect_attempt_window_s: EnvInt = _env("FITGLUE_CONNECT_ATTEMPT_WINDOW_S", 3600, ge=1, le=7 * DAY_S)
    slack_timeout_s: EnvSeconds = _env("FITGLUE_SLACK_TIMEOUT_S", 10, ge=1, le=300)  # one Slack Web API call
    body_read_timeout_s: EnvInt = _env("FITGLUE_BODY_READ_TIMEOUT_S", 10, ge=1, le=300)
    # Outbound events to FitGlue's other services (issue 12, README "Outbound events"): off while the
    # URL is unset. The secret is a Standard Webhooks secret, `whsec_` + base64.
    events_url: EventsUrl | None = _env("FITGLUE_EVENTS_URL")
    events_secret: EventsSecret | None = _env("FITGLUE_EVENTS_SECRET")
    # Seconds between attempts after each failed one; after the last the event is parked as failed.
    events_retry_schedule_s: RetrySchedule = _env("FITGLUE_EVENTS_RETRY_SCHEDULE_S", (5, 300, 1800, 7200, 18000, 36000))
    events_timeout_s: EnvSeconds = _env("FITGLUE_EVENTS_TIMEOUT_S", 10, gt=0, le=300)  # one delivery attempt
    events_retention_days: EnvInt = _env("FITGLUE_EVENTS_RETENTION_DAYS", 30, ge=1, le=MAX_RETENTION_DAYS)  # after delivery or parking
    events_batch: EnvInt = _env("FITGLUE_EVENTS_BATCH", 50, ge=1, le=1000)  # events claimed (and sent at once) per round
    events_poll_ms: EnvInt = _env("FITGLUE_EVENTS_POLL_MS", 200, ge=10, le=60_000)  # how often the outbox is looked at
    # Access-token API: bearer key (unset: 404); how long/how often a call waits on a refresh held elsewhere.
    token_api_key: TokenApiKey | None = _env("FITGLUE_TOKEN_API_KEY")
    token_refresh_wait_s: EnvSeconds = _env("FITGLUE_TOKEN_REFRESH_WAIT_S", 15, gt=0, le=300)
    token_refresh_poll_ms: EnvInt = _env("FITGLUE_TOKEN_REFRESH_POLL_MS", 50, ge=1, le=5000)
    # On SIGTERM: how long jobs in flight get to finish, and then to unwind once cancelled (service.core.wind_down).
    shutdown_grace_s: EnvSeconds = _env("FITGLUE_SHUTDOWN_GRACE_S", 10, ge=1, le=300)
    audit_batch_ms: EnvInt = _env("FITGLUE_AUDIT_BATCH_MS", 50, ge=0, le=5000)  # service.core.audit_batch
    # Set by `fitglue serve --sandbox`, never by the environment (no alias: see settings_sources).
    sandbox: bool = False

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Keyword arguments, then the environment, then `.env` (no secrets directory)."""
        return (init_settings, *contract_sources(settings_cls, env_settings, dotenv_settings))

    @field_validator("public_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("FITGLUE_PUBLIC_URL must start with http:// or https://")
        return value

    @property
    def events_enabled(self) -> bool:
        """Whether outbound events are written and sent: FITGLUE_EVENTS_URL is set."""
        return bool(self.events_url)

    def require_events_secret(self) -> None:
        """A URL without a secret cannot sign: ConfigError naming FITGLUE_EVENTS_SECRET (`serve`, the worker)."""
        if self.events_url and not _given(self.events_secret):
            raise ConfigError("FITGLUE_EVENTS_URL is set but FITGLUE_EVENTS_SECRET is not: outbound events "
                              "cannot be signed (`fitglue init` writes a secret)", ["FITGLUE_EVENTS_SECRET"])

    @model_validator(mode="after")
    def _audit_kept_longest(self) -> Settings:
        # The audit log must be kept at least as long as anything else: it is what remains to
        # explain what happened to the rows that are gone.
        longest = max(getattr(self, name) for name in type(self).model_fields
                      if name.endswith("retention_days") and name != "audit_retention_days")
        if self.audit_retention_days < longest:
            raise BadSetting("FITGLUE_AUDIT_RETENTION_DAYS", "FITGLUE_AUDIT_RETENTION_DAYS must be at least the longest "
                             f"other retention ({longest} days), got {self.audit_retention_days}")
        return self

    # --- building in code ------------------------------------------------------------------

    @classmethod
    def from_values(cls, **fields: Any) -> Settings:
        """Settings from field names and plain values (secrets as str), validated like the
        environment's, ignoring the environment and `.env`. Raises ConfigError; TypeError for a
        name that is not a field."""
        unknown = set(fields) - set(cls.model_fields)
        if unknown:
            raise TypeError(f"not Settings fields: {sorted(unknown)}")
        # BaseSettings.__init__ (which model_validate calls too) reads the sources: give it an
        # empty environment, no .env, and the values under their environment names.
        try:
            with environment({}):
                return cls(_env_file=None, **{ENV_BY_FIELD.get(name, name): value for name, value in fields.items()})
        except ValidationError as exc:
            raise _config_error(exc) from None

    def replaced(self, **fields: Any) -> Settings:
        """A copy with `fields` changed, validated like from_values. Fields set before (from the
        environment or in code) stay marked as set (`model_fields_set`). Raises ConfigError."""
        return type(self).from_values(**{**self.model_dump(exclude_unset=True), **fields})

    # --- reading ---------------------------------------------------------------------------

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

    def secret_values(self) -> tuple[str, ...]:
        """The plain text of every SecretStr field that is set, for the log scrubber."""
        found: list[str] = []
        for name in type(self).model_fields:
            value = getattr(self, name)
            for item in value if isinstance(value, tuple) else (value,):
                if isinstance(item, SecretStr) and item.get_secret_value():
                    found.append(item.get_secret_value())
        return tuple(found)

    def require(self, *names: str) -> None:
        """Raise one ConfigError naming every listed environment variable that is missing."""
        missing = [name for name in names if not _given(getattr(self, FIELD_BY_ENV[name]))]
        if missing:
            raise ConfigError(
                "missing required setting(s): " + ", ".join(missing)
                + " (set them in the environment or in .env; `fitglue init` writes a template)",
                missing,
            )


def reveal(secret: SecretStr | None) -> str | None:
    """The plain text of a secret setting, or None when it is unset: for the one place that needs it."""
    return secret.get_secret_value() if secret is not None else None


def _given(value: object) -> bool:
    return bool(value.get_secret_value() if isinstance(value, SecretStr) else value)


# Environment variable -> Settings field, for every field the environment can set.
FIELD_BY_ENV = {field.validation_alias: name for name, field in Settings.model_fields.items()
                if isinstance(field.validation_alias, str)}
ENV_BY_FIELD = {name: var for var, name in FIELD_BY_ENV.items()}
ENV_NAMES = frozenset(FIELD_BY_ENV)  # every variable the contract names

SERVE_REQUIRES = ("FITGLUE_SECRET_KEY", "STRAVA_CLIENT_ID", "STRAVA_CLIENT_SECRET", "STRAVA_WEBHOOK_VERIFY_TOKEN")


def _config_error(exc: ValidationError) -> ConfigError:
    return config_error(exc, lambda loc: loc if loc in ENV_NAMES else env_name(loc))


def load_settings(environ: Mapping[str, str] | None = None, dotenv: Path | None = None) -> Settings:
    """The settings from the environment (or `environ`, for tests) and `.env` (or `dotenv`); the
    environment wins, and empty values count as unset. Raises ConfigError naming the bad variables."""
    try:
        with environment(environ):
            return Settings() if dotenv is None else Settings(_env_file=dotenv)
    except ValidationError as exc:
        raise _config_error(exc) from None
