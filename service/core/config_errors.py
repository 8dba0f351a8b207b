"""How a bad or missing setting is reported: one `ConfigError` naming every variable at fault.

Split from `service.core.settings` (which re-exports `ConfigError`), so the settings module stays
the table of settings. The CLI turns a ConfigError into exit status 2.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from pydantic import ValidationError


class ConfigError(Exception):
    """A missing or bad setting. The CLI turns it into exit status 2; `names` are the variables."""

    def __init__(self, message: str, names: Iterable[str] = ()) -> None:
        super().__init__(message)
        self.names = tuple(names)


class BadSetting(ValueError):
    """Raised by a check across fields, whose error has no field of its own: names the variable."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.name = name


def config_error(exc: ValidationError, env_name: Callable[[str], str]) -> ConfigError:
    """One ConfigError naming every bad variable, each with its own message. `env_name` gives the
    environment variable of a location that is not one already (a field name)."""
    names: list[str] = []
    messages: list[str] = []
    for error in exc.errors():
        ctx = error.get("ctx") or {}
        if isinstance(ctx.get("error"), BadSetting):
            name, message = ctx["error"].name, str(ctx["error"])
        else:
            name = env_name(str(error["loc"][0]) if error["loc"] else "")
            if error["type"] == "value_error" and "error" in ctx:
                message = str(ctx["error"])  # our own validators' messages already name the variable
            else:
                message = f"{name}: {error['msg']}, got {error['input']!r}"
        if name not in names:
            names.append(name)
        messages.append(message)
    return ConfigError("; ".join(messages), names)
