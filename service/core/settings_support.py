"""The settings of issue 13's support views (history, bulk Connect links, the daily digest): a part
of `Settings` (which inherits these fields), kept here so settings.py stays readable in one sitting.
Fields are declared with the same helpers as every other (`settings_fields.py`): numbers from the
environment are ASCII digits only."""

from __future__ import annotations

from service.core.settings_fields import DAY_S, MAX_RETENTION_DAYS, EnvFields, EnvInt, env


class SupportViewSettings(EnvFields):
    # Retention of issue 13's tables (days; service/background/retention.py).
    history_retention_days: EnvInt = env("FITGLUE_HISTORY_RETENTION_DAYS", 180, ge=1, le=MAX_RETENTION_DAYS)
    bulk_run_retention_days: EnvInt = env("FITGLUE_BULK_RUN_RETENTION_DAYS", 90, ge=1, le=MAX_RETENTION_DAYS)
    # Bulk Connect links from Slack: calls per minute per method (Slack's Tier 3: about 50), and how
    # often one call is tried again after a 429 (each time after Slack's Retry-After).
    slack_lookup_per_min: EnvInt = env("FITGLUE_SLACK_LOOKUP_PER_MIN", 50, ge=1, le=60_000)
    slack_post_per_min: EnvInt = env("FITGLUE_SLACK_POST_PER_MIN", 50, ge=1, le=60_000)
    slack_rate_limit_retries: EnvInt = env("FITGLUE_SLACK_RATE_LIMIT_RETRIES", 5, ge=0, le=100)
    # A running bulk run that has not moved on to its next user for this long was abandoned (its process
    # was killed): the next start for that finding ends it, so the finding is not blocked for ever.
    # Well above one user's worst wait (Slack's Retry-After, a slow Strava-free link issue).
    bulk_run_stale_s: EnvInt = env("FITGLUE_BULK_RUN_STALE_S", 900, ge=1, le=DAY_S)
    # The daily digest in FITGLUE_ALERT_CHANNEL: its hour (UTC), and how often each process checks.
    digest_hour_utc: EnvInt = env("FITGLUE_DIGEST_HOUR_UTC", 8, ge=0, le=23)
    digest_check_s: EnvInt = env("FITGLUE_DIGEST_CHECK_S", 300, ge=10, le=DAY_S)
