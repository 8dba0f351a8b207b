from __future__ import annotations

import pytest

from service.core.settings import SERVE_REQUIRES, ConfigError, Settings, load_settings


def test_defaults_match_the_design(tmp_path):
    s = load_settings({}, tmp_path / "none.env")
    assert s.database_url == "sqlite+aiosqlite:///fitglue.db"
    assert (s.public_url, s.host, s.port) == ("http://localhost:8080", "127.0.0.1", 8080)
    assert (s.refresh_interval_s, s.refresh_margin_s, s.link_ttl_s) == (300, 3600, 604800)
    assert (s.rate_limit_warn_pct, s.webhook_silent_days) == (80, 14)
    assert s.oauth_callback_url == "http://localhost:8080/oauth/strava/callback"
    assert s.webhook_callback_url == "http://localhost:8080/webhooks/strava"


def test_environment_wins_over_dotenv_and_empty_counts_as_missing(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text('# comment\nexport STRAVA_CLIENT_ID="111"\nSTRAVA_CLIENT_SECRET=\nFITGLUE_PORT=9000\n')
    s = load_settings({"STRAVA_CLIENT_ID": "222", "FITGLUE_SECRET_KEY": ""}, env_file)
    assert s.strava_client_id == "222" and s.port == 9000
    with pytest.raises(ConfigError) as info:
        s.require(*SERVE_REQUIRES)
    assert info.value.names == ("FITGLUE_SECRET_KEY", "STRAVA_CLIENT_SECRET", "STRAVA_WEBHOOK_VERIFY_TOKEN")
    assert "FITGLUE_SECRET_KEY, STRAVA_CLIENT_SECRET, STRAVA_WEBHOOK_VERIFY_TOKEN" in str(info.value)


@pytest.mark.parametrize("name,value", [("FITGLUE_PORT", "eighty"), ("FITGLUE_LOG_FORMAT", "xml"),
                                        ("FITGLUE_PUBLIC_URL", "localhost:8080"),
                                        ("FITGLUE_RATE_LIMIT_WARN_PCT", "150")])
def test_bad_values_name_the_variable(tmp_path, name, value):
    with pytest.raises(ConfigError) as info:
        load_settings({name: value}, tmp_path / "none.env")
    assert name in str(info.value)


def test_lists_and_trailing_slashes(tmp_path):
    s = load_settings({"FITGLUE_PREVIOUS_SECRET_KEYS": "a, b,,c", "FITGLUE_PUBLIC_URL": "https://x.example/",
                       "FITGLUE_SUPPORT_SLACK_IDS": "U1,S2"}, tmp_path / "none.env")
    # Secrets are SecretStr (they print as ********** and reach the log scrubber); the list is the same.
    assert tuple(key.get_secret_value() for key in s.previous_secret_keys) == ("a", "b", "c")
    assert s.support_slack_ids == ("U1", "S2")
    assert s.public_url == "https://x.example" and s.secure_cookies


def test_slack_timeout_setting(tmp_path):
    assert load_settings({}, tmp_path / "none.env").slack_timeout_s == 10
    assert load_settings({"FITGLUE_SLACK_TIMEOUT_S": "3"}, tmp_path / "none.env").slack_timeout_s == 3
    for bad in ("0", "ten"):
        with pytest.raises(ConfigError) as info:
            load_settings({"FITGLUE_SLACK_TIMEOUT_S": bad}, tmp_path / "none.env")
        assert info.value.names == ("FITGLUE_SLACK_TIMEOUT_S",)


SECRET_VARIABLES = ("FITGLUE_SECRET_KEY", "STRAVA_CLIENT_SECRET", "STRAVA_WEBHOOK_VERIFY_TOKEN", "SLACK_BOT_TOKEN",
                    "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN", "FITGLUE_ADMIN_TOKEN")


def test_secrets_are_hidden_and_all_known_to_the_log_scrubber(tmp_path):
    env = {name: f"value-of-{name.lower()}" for name in SECRET_VARIABLES}
    s = load_settings({**env, "FITGLUE_PREVIOUS_SECRET_KEYS": "old-key-one,old-key-two"}, tmp_path / "none.env")
    assert not any(value in repr(s) or value in str(s.model_dump()) for value in env.values())
    assert set(s.secret_values()) == {*env.values(), "old-key-one", "old-key-two"}


def test_only_the_contracts_names_are_read(tmp_path):
    (tmp_path / ".env").write_text("sandbox=true\nport=1\nOTHER_PROGRAM=x\n")
    s = load_settings({"sandbox": "1", "host": "0.0.0.0"}, tmp_path / ".env")
    assert (s.sandbox, s.port, s.host) == (False, 8080, "127.0.0.1")


def test_settings_built_in_code_ignore_the_environment(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("FITGLUE_HOST=10.0.0.1\n")
    monkeypatch.setenv("FITGLUE_PORT", "7000")
    assert (load_settings().host, load_settings().port) == ("10.0.0.1", 7000)
    built = Settings.from_values(admin_token="admin-token-x-0123456789ab")
    assert (built.host, built.port, built.model_fields_set) == ("127.0.0.1", 8080, {"admin_token"})
    changed = built.replaced(port=9000)
    assert changed.admin_token is not None and changed.admin_token.get_secret_value() == "admin-token-x-0123456789ab"
    assert changed.port == 9000 and changed.model_fields_set == {"admin_token", "port"}
    with pytest.raises(ConfigError) as info:
        built.replaced(port=70000)
    assert info.value.names == ("FITGLUE_PORT",)


def _whole_number_fields() -> dict[str, str]:
    """Settings field -> its variable, for every number read with settings_fields' one parser (the
    parts' fields, settings_support.py, included)."""
    from typing import get_args

    from pydantic import BeforeValidator

    from service.core import settings_fields

    def parsed_as_digits(metadata: list, annotation: object) -> bool:
        found = any(isinstance(m, BeforeValidator) and m.func is settings_fields._whole_number for m in metadata)
        return found or any(parsed_as_digits(list(getattr(arg, "__metadata__", ())), arg)
                            for arg in get_args(annotation))

    return {name: str(field.validation_alias) for name, field in Settings.model_fields.items()
            if parsed_as_digits(field.metadata, field.annotation)}


def test_every_number_from_the_environment_is_digits_only_and_names_its_variable(tmp_path):
    fields = _whole_number_fields()
    # settings.py's own numbers and the support views' (one parser, one declaration helper).
    assert {"port", "link_ttl_s", "strava_athlete_capacity", "digest_hour_utc", "history_retention_days",
            "slack_rate_limit_retries"} <= set(fields)
    for var in fields.values():
        for bad in ("\u0663", "+5", "1e3"):  # another script's digit, a sign, an exponent
            with pytest.raises(ConfigError) as info:
                load_settings({var: bad}, tmp_path / "none.env")
            assert info.value.names == (var,) and f"{var} must be a whole number" in str(info.value), (var, bad)
    assert load_settings({"FITGLUE_DIGEST_HOUR_UTC": " 7 "}, tmp_path / "none.env").digest_hour_utc == 7
    assert Settings.from_values(digest_hour_utc=9).digest_hour_utc == 9


def _upper_bound(field) -> float | None:
    for item in field.metadata:
        for attribute in ("le", "lt"):
            if getattr(item, attribute, None) is not None:
                return getattr(item, attribute)
    return None


def test_every_number_has_an_upper_bound_and_a_huge_one_is_refused_at_start(tmp_path):
    """A huge number was accepted and failed later: FITGLUE_LINK_TTL_S=999999999999 made
    `fitglue link` end in "the command failed unexpectedly (OverflowError: date value out of range)"."""
    fields = _whole_number_fields()
    assert not [var for name, var in fields.items() if _upper_bound(Settings.model_fields[name]) is None]
    for var in fields.values():
        with pytest.raises(ConfigError) as info:
            load_settings({var: "999999999999"}, tmp_path / "none.env")
        assert info.value.names == (var,) and "less than or equal to" in str(info.value), var


def test_each_bound_admits_its_default_and_keeps_date_arithmetic_in_range(tmp_path):
    from datetime import UTC, datetime, timedelta

    defaults = Settings.from_values()
    now = datetime.now(UTC)
    for name, var in _whole_number_fields().items():
        bound = _upper_bound(Settings.model_fields[name])
        default = getattr(defaults, name)
        assert default is None or default <= bound, var
        # (audit entries are kept at least as long as anything else: at the bound too)
        at_bound = load_settings({"FITGLUE_AUDIT_RETENTION_DAYS": "36500", var: str(int(bound))},
                                 tmp_path / "none.env")
        assert getattr(at_bound, name) == bound
        unit = timedelta(days=1) if name.endswith("_days") else timedelta(seconds=1)
        if name.endswith(("_days", "_s")):  # ages and lifetimes are added to and taken from now
            assert now - bound * unit < now + bound * unit, var


@pytest.mark.parametrize("token", ["x", "admin-token-0123456789", " " + "a" * 30, "a" * 30 + " "])
def test_a_short_or_space_padded_admin_token_is_a_configuration_error(token, tmp_path):
    """FITGLUE_ADMIN_TOKEN guards the admin API (Connect links, disconnects, erasure) and a wrong guess
    costs only a 401: any length was accepted ("x" included). Same rule as FITGLUE_TOKEN_API_KEY."""
    with pytest.raises(ConfigError) as info:
        load_settings({"FITGLUE_ADMIN_TOKEN": token}, tmp_path / "none.env")
    assert info.value.names == ("FITGLUE_ADMIN_TOKEN",) and "at least 24 characters" in str(info.value)
    assert len(token.strip()) < 5 or token.strip() not in str(info.value)  # a secret: never echoed
    assert load_settings({"FITGLUE_ADMIN_TOKEN": "a" * 24}, tmp_path / "none.env").admin_token is not None
    assert load_settings({"FITGLUE_ADMIN_TOKEN": ""}, tmp_path / "none.env").admin_token is None  # the API off
