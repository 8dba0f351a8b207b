"""How a settings field is declared and how a number from the environment is read: the one definition
that `service.core.settings.Settings` and the parts it inherits (`settings_support.py`) all use.

A field names its environment variable once, in `env(...)`. A number from the environment is ASCII
digits only (`service.core.inputs.parse_whole_number`, the rule for every number from outside); its
message names the variable. The variable is found from the field name through the models built on
`EnvFields` (the class hierarchy is the only registry), so a part of the settings can declare its
fields here without importing `settings.py`, which imports it.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, Field, ValidationInfo

from service.core.inputs import MAX_ID, parse_whole_number


class EnvFields(BaseModel):
    """The base of every model whose fields are read from the environment (Settings and its parts)."""


def env(name: str, default: Any = None, **bounds: Any) -> Any:
    """A field read from environment variable `name` (exactly; case matters), with pydantic's `ge`/`le`
    bounds, which check a value set in code too."""
    return Field(default, validation_alias=name, **bounds)


def env_name(field_name: str | None) -> str:
    """The environment variable of a settings field (its alias), for messages; the field name itself
    when no settings model declares it."""
    models: list[type[BaseModel]] = [EnvFields]
    while models:
        model = models.pop()
        field = model.model_fields.get(field_name or "")
        if field is not None and isinstance(field.validation_alias, str):
            return field.validation_alias
        models.extend(model.__subclasses__())
    return str(field_name)


def _whole_number(value: object, info: ValidationInfo) -> object:
    """Text from the environment: ASCII digits only, 0 to MAX_ID, the message naming the variable.
    A number set in code passes through; the field's ge/le bounds check both."""
    if not isinstance(value, str):
        return value
    return parse_whole_number(value.strip(), env_name(info.field_name), low=0, high=MAX_ID)


EnvInt = Annotated[int, BeforeValidator(_whole_number)]
# Every number a field takes has an upper bound: a huge one would otherwise be accepted at start and
# fail later, in date arithmetic (a Connect link lifetime of 10^12 s: "OverflowError: date value out
# of range") or as a pool of a million tasks. The bounds are in these units:
DAY_S = 86_400
MAX_RETENTION_DAYS = 36_500  # a hundred years: "keep it", still well inside datetime's range
# Whole seconds from the environment; tests may set fractions in code.
EnvSeconds = Annotated[float, BeforeValidator(_whole_number)]
