"""The JSON bodies and query parameters of `fitglue history` and `fitglue affected` (CLI `--json` and
the admin API, whose OpenAPI document is generated from these models, like `api_models.py`)."""

from __future__ import annotations

from typing import Annotated, Any, Self

from pydantic import BeforeValidator, ConfigDict, Field

from service.core.inputs import MAX_LIMIT, parse_limit, parse_text
from service.desk.affected import AFFECTED_FINDINGS
from service.desk.api_models import UtcTime
from service.desk.api_queries import Query
from service.desk.history import DEFAULT_LIMIT, HISTORY_KINDS, parse_history_cursor
from troubleshooting.serialize import Body


class HistoryEntryBody(Body):
    """One entry; besides these, the ids that help (event_id, job_id, attempt_id, audit_id, status,
    error_class, count, …), never a token or a link."""

    model_config = ConfigDict(from_attributes=True, frozen=True, extra="allow", populate_by_name=True)

    at: UtcTime
    kind: str = Field(description="one of " + ", ".join(HISTORY_KINDS))
    summary: str = Field(description="what happened, in words")
    article: str = Field(description="the help article's section anchor, e.g. #authorization-failed")


class HistoryBody(Body):
    """`fitglue history WHO --json`: newest first; `next_before` is the `before` of the next, older page."""

    entries: list[HistoryEntryBody]
    next_before: str | None

    @classmethod
    def of(cls, result: Any) -> Self:
        return cls.model_validate(result.to_dict())


class AffectedUserBody(Body):
    email: str
    athlete_id: int | None
    since: UtcTime = Field(description="when they got the finding")
    last_change: UtcTime = Field(description="the last change to their connection or attempt")


class DayCountBody(Body):
    date: str = Field(json_schema_extra={"format": "date"}, description="a UTC day")
    count: int


class AffectedBody(Body):
    """`fitglue affected FINDING --json`: everyone with the finding (the 20 most recent by name)."""

    finding: str = Field(description="one of " + ", ".join(AFFECTED_FINDINGS))
    count: int
    since: UtcTime | None = Field(description="only users who got the finding at or after this time")
    users: list[AffectedUserBody]
    by_day: list[DayCountBody] = Field(description="users per UTC day they got the finding, oldest first")

    @classmethod
    def of(cls, result: Any) -> Self:
        return cls.model_validate(result.to_dict())


def _cursor(raw: Any) -> str | None:
    parse_history_cursor(raw or None)  # refuses a malformed cursor (BadInput: 400 bad_argument)
    return raw or None


class HistoryQuery(Query):
    limit: Annotated[int, BeforeValidator(lambda raw: parse_limit(raw, "limit", default=DEFAULT_LIMIT))] = Field(
        DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="at most this many entries, newest first")
    before: Annotated[str | None, BeforeValidator(_cursor)] = Field(
        None, description="a previous page's `next_before`: the next, older page")


class AffectedQuery(Query):
    finding: Annotated[str, BeforeValidator(lambda raw: parse_text(raw, "finding") or "")] = Field(
        json_schema_extra={"enum": list(AFFECTED_FINDINGS)})
    since: Annotated[str | None, BeforeValidator(lambda raw: raw or None)] = Field(
        None, json_schema_extra={"format": "date-time"},
        description="only users who got the finding at or after this ISO 8601 date or time")
