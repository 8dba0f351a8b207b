"""Where service.core.settings' values come from: the environment (or a mapping standing in for
it) and `.env`, reduced to the variables the contract names.

pydantic-settings reads os.environ, and would also read a field's bare name (`sandbox`, `port`)
as a variable; neither fits the contract, hence these two small sources.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource

# Set while settings are built from a given mapping (a test's environment, or {} for settings
# built in code): it stands in for os.environ.
_GIVEN_ENVIRON: ContextVar[Mapping[str, str] | None] = ContextVar("fitglue_given_environ", default=None)


@contextmanager
def environment(environ: Mapping[str, str] | None) -> Iterator[None]:
    """Within the block, settings read `environ` instead of os.environ (None: os.environ)."""
    token = _GIVEN_ENVIRON.set(environ)
    try:
        yield
    finally:
        _GIVEN_ENVIRON.reset(token)


class _GivenEnvironSource(EnvSettingsSource):
    """The environment source over a given mapping instead of os.environ."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._given = environ
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return {name: value for name, value in self._given.items() if value != ""}


class _ContractNamesOnly(PydanticBaseSettingsSource):
    """Passes on only the variables the contract names (the fields' string aliases): a field
    without one is never read from the environment, not even under its bare field name."""

    def __init__(self, settings_cls: type[BaseSettings], inner: PydanticBaseSettingsSource) -> None:
        super().__init__(settings_cls)
        self._inner = inner
        self._names = {field.validation_alias for field in settings_cls.model_fields.values()
                       if isinstance(field.validation_alias, str)}

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ delegates to the inner source

    def __call__(self) -> dict[str, Any]:
        return {name: value for name, value in self._inner().items() if name in self._names}


def contract_sources(settings_cls: type[BaseSettings], env_settings: PydanticBaseSettingsSource,
                     dotenv_settings: PydanticBaseSettingsSource) -> tuple[PydanticBaseSettingsSource, ...]:
    """The environment (or the given mapping), then `.env`, each limited to the contract's names."""
    given = _GIVEN_ENVIRON.get()
    env = env_settings if given is None else _GivenEnvironSource(settings_cls, given)
    return _ContractNamesOnly(settings_cls, env), _ContractNamesOnly(settings_cls, dotenv_settings)
