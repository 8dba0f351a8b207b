"""The admin API's query parameters: one pydantic model per route that takes any.

Each field parses its raw text with the rule of `service.core.inputs` (the same rule as the CLI and
the bot), so the parameters `openapi.json` documents (generated from these fields) are exactly the
ones the route accepts. A refused value raises that rule's `BadInput` (400 `bad_argument`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Annotated, Any, Self

from pydantic import BeforeValidator, Field, ValidationError, WithJsonSchema

from service.core.inputs import (
    MAX_EMAIL_LENGTH,
    MAX_LIMIT,
    MAX_ROW_ID,
    BadInput,
    parse_cursor,
    parse_limit,
    parse_text,
)
from troubleshooting.serialize import Body
from troubleshooting.vocabulary import JOB_STATES


def _parsed(parse: Callable[..., Any], name: str, **options: Any) -> BeforeValidator:
    return BeforeValidator(lambda raw: parse(raw, name, **options))


class Query(Body):
    """Query parameters: documented from the fields, parsed through them (unknown names are ignored)."""

    @classmethod
    def parse(cls, query: Mapping[str, str]) -> Self:
        """Raises the field parser's BadInput (400 `bad_argument`) for the first value it refuses."""
        try:
            return cls.model_validate({name: query[name] for name in cls.model_fields if name in query})
        except ValidationError as exc:
            refused = (exc.errors()[0].get("ctx") or {}).get("error")
            raise refused if isinstance(refused, BadInput) else BadInput(str(exc)) from None


class JobsQuery(Query):
    # Any text passes here: the desk refuses an unknown state itself (400 `bad_state`).
    state: Annotated[str | None, BeforeValidator(lambda raw: raw or None),
                     WithJsonSchema({"type": "string", "enum": [state.value for state in JOB_STATES]})] = Field(
        None, description="only jobs in this state")


class AuditQuery(Query):
    limit: Annotated[int, _parsed(parse_limit, "limit", default=50)] = Field(
        50, ge=1, le=MAX_LIMIT, description="at most this many entries, newest first")
    before: Annotated[int | None, _parsed(parse_cursor, "before")] = Field(
        None, ge=1, le=MAX_ROW_ID, description="only entries with a smaller id (`next_before`: the next, older page)")
    actor: Annotated[str | None, _parsed(parse_text, "actor")] = Field(None, max_length=MAX_EMAIL_LENGTH)
    action: Annotated[str | None, _parsed(parse_text, "action")] = Field(None, max_length=MAX_EMAIL_LENGTH)
    target: Annotated[str | None, _parsed(parse_text, "target")] = Field(None, max_length=MAX_EMAIL_LENGTH)
