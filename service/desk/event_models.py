"""The JSON bodies, query and request of the outbound-event operations (README "Outbound events"):
`fitglue events … --json` and the admin routes `GET events`, `POST events/{id}/retry`,
`POST events/retry-failed`, `POST events/replay`. Same conventions as `service/desk/api_models.py`
(one pydantic model per body; the OpenAPI document is generated from them)."""

from __future__ import annotations

from typing import Annotated, Any, Self

from pydantic import BeforeValidator, Field, ValidationError, WithJsonSchema, field_validator

from service.core.inputs import (
    MAX_ID,
    MAX_LIMIT,
    MAX_ROW_ID,
    BadInput,
    parse_cursor,
    parse_id,
    parse_limit,
    parse_since,
)
from service.desk.api_models import UtcTime
from service.desk.api_queries import Query
from service.outbox import EVENT_TYPES, STATES
from troubleshooting.serialize import Body

DEFAULT_LIMIT = 100
_STATES_SCHEMA = WithJsonSchema({"type": "string", "enum": list(STATES)})


class EventBody(Body):
    """One outbound event: `id` is the row (for `events retry ID`), `webhook_id` what receivers see."""

    id: int
    webhook_id: str = Field(description="the `webhook-id` header it is sent with, the same on every retry")
    type: str = Field(description="one of " + ", ".join(EVENT_TYPES))
    athlete_id: int | None
    state: Annotated[str, _STATES_SCHEMA]
    attempts: int
    next_attempt_at: UtcTime | None = Field(description="when it is sent next; null unless pending")
    last_error: str | None
    created_at: UtcTime
    delivered_at: UtcTime | None
    replay_of: str | None = Field(description="the original webhook-id, for a replay")

    @classmethod
    def of(cls, result: Any) -> Self:
        body = cls.model_validate(result)
        return body if body.state == "pending" else body.model_copy(update={"next_attempt_at": None})


class EventsBody(Body):
    """`fitglue events --json`: newest first; `next_before` is the `before` of the next, older page."""

    events: list[EventBody]
    next_before: int | None

    @classmethod
    def of(cls, result: Any) -> Self:
        return cls(events=[EventBody.of(e) for e in result.events], next_before=result.next_before)


class EventsRetriedBody(Body):
    """`fitglue events retry ID|--failed --json`: how many events are due again now."""

    retried: int

    @classmethod
    def of(cls, result: Any) -> Self:
        return cls(retried=result.count)


class EventsReplayedBody(Body):
    """`fitglue events replay --json`: how many delivered events were queued again with new webhook-ids."""

    replayed: int

    @classmethod
    def of(cls, result: Any) -> Self:
        return cls(replayed=result.count)


class EventsQuery(Query):
    # Any text passes here: the desk refuses an unknown state itself (400 `bad_state`).
    state: Annotated[str | None, BeforeValidator(lambda raw: raw or None), _STATES_SCHEMA] = Field(
        None, description="only events in this state")
    athlete: Annotated[int | None, BeforeValidator(lambda raw: parse_id(raw, "athlete") if raw else None)] = Field(
        None, ge=1, le=MAX_ID, description="only this Strava athlete's events")
    limit: Annotated[int, BeforeValidator(lambda raw: parse_limit(raw, "limit", default=DEFAULT_LIMIT))] = Field(
        DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="at most this many events, newest first")
    before: Annotated[int | None, BeforeValidator(lambda raw: parse_cursor(raw, "before"))] = Field(
        None, ge=1, le=MAX_ROW_ID, description="only events with a smaller id (`next_before`: the next page)")


class ReplayRequest(Body):
    """`POST events/replay`: `{"since": ISO 8601 UTC, "athlete_id": a Strava athlete id (optional)}`."""

    since: Annotated[Any, WithJsonSchema({"type": "string", "format": "date-time"})] = Field(
        description="replay the delivered events created at or after this time")
    athlete_id: Annotated[Any, WithJsonSchema({"type": ["integer", "string", "null"]})] = Field(
        None, description="only this athlete's events (a number, or a string of ASCII digits)")

    @classmethod
    def parse(cls, body: dict[str, Any]) -> Self:
        """The request from a parsed JSON object. Raises BadInput (400 `bad_argument`) naming what is wrong."""
        unknown = sorted(set(body) - set(cls.model_fields))
        if unknown:
            raise BadInput(f"unknown field(s) in the body: {', '.join(unknown)} (expected since, athlete_id)")
        if "since" not in body:
            raise BadInput("the body needs `since`, an ISO 8601 UTC time like 2026-11-27T00:00:00Z")
        try:
            return cls.model_validate(body)
        except ValidationError as exc:
            refused = (exc.errors()[0].get("ctx") or {}).get("error")
            raise refused if isinstance(refused, BadInput) else BadInput(str(exc)) from None

    @field_validator("since")
    @classmethod
    def _since(cls, value: Any) -> Any:
        return parse_since(value, "since")

    @field_validator("athlete_id")
    @classmethod
    def _athlete(cls, value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise BadInput("athlete_id must be a Strava athlete id (a number, or a string of digits)")
        return parse_id(str(value), "athlete_id")
