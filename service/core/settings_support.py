"""The settings of issue 13's support views (history, bulk Connect links, the daily digest): a part
of `Settings` (which inherits these fields), kept here so settings.py stays readable in one sitting.
Numbers from the environment follow the same rule as every other: ASCII digits only."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, Field

from service.core.inputs import MAX_ID, parse_whole_number


def _whole(name: str) -> Any:
    """An int read from environment variable `name`: digits only, named in the message when refused."""

    def parse(value: object) -> object:
        return parse_whole_number(value.strip(), name, low=0, high=MAX_ID) if isinstance(value, str) else value

    return Annotated[int, BeforeValidator(parse)]


def _env(name: str, default: int, **bounds: Any) -> Any:
    return Field(default, validation_alias=name, **bounds)


class SupportViewSettings(BaseModel):
    # Retention of issue 13's tables (days; service/background/retention.py).
    history_retention_days: _whole("FITGLUE_HISTORY_RETENTION_DAYS") = _env(  # type: ignore[valid-type]
        "FITGLUE_HISTORY_RETENTION_DAYS", 180, ge=1)
    bulk_run_retention_days: _whole("FITGLUE_BULK_RUN_RETENTION_DAYS") = _env(  # type: ignore[valid-type]
        "FITGLUE_BULK_RUN_RETENTION_DAYS", 90, ge=1)
    # Bulk Connect links from Slack: calls per minute per method (Slack's Tier 3: about 50), and how
    # often one call is tried again after a 429 (each time after Slack's Retry-After).
    slack_lookup_per_min: _whole("FITGLUE_SLACK_LOOKUP_PER_MIN") = _env(  # type: ignore[valid-type]
        "FITGLUE_SLACK_LOOKUP_PER_MIN", 50, ge=1)
    slack_post_per_min: _whole("FITGLUE_SLACK_POST_PER_MIN") = _env(  # type: ignore[valid-type]
        "FITGLUE_SLACK_POST_PER_MIN", 50, ge=1)
    slack_rate_limit_retries: _whole("FITGLUE_SLACK_RATE_LIMIT_RETRIES") = _env(  # type: ignore[valid-type]
        "FITGLUE_SLACK_RATE_LIMIT_RETRIES", 5, ge=0)
    # The daily digest in FITGLUE_ALERT_CHANNEL: its hour (UTC), and how often each process checks.
    digest_hour_utc: _whole("FITGLUE_DIGEST_HOUR_UTC") = _env(  # type: ignore[valid-type]
        "FITGLUE_DIGEST_HOUR_UTC", 8, ge=0, le=23)
    digest_check_s: _whole("FITGLUE_DIGEST_CHECK_S") = _env(  # type: ignore[valid-type]
        "FITGLUE_DIGEST_CHECK_S", 300, ge=10)
