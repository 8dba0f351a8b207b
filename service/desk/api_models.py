"""The JSON bodies of `fitglue … --json` and of the admin API: one pydantic model each.

The CLI and the admin API both print a desk result as `Model.of(result).to_json()`, and the admin
API's OpenAPI document is generated from these models (`service/web/admin_openapi.py`), so the
documented shape is the printed one. Field names and types are contract (DESIGN.md part 2). Times
are ISO 8601 UTC with a `Z` (`2026-11-27T14:15:00Z`); words (statuses, states, finding ids, …) are
those of `troubleshooting.vocabulary`. Strava tokens appear in none of them.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Annotated, Any, Self

from pydantic import Field, PlainSerializer, WithJsonSchema

from service.core.clock import iso_utc
from service.desk.error_table import ERRORS
from troubleshooting.serialize import Body, DiagnosisBody, FindingBody
from troubleshooting.vocabulary import ConnectionStatus, JobKind, JobState

__all__ = ["Body", "DiagnosisBody", "FindingBody"]  # the diagnosis' own bodies live beside the engine

UtcTime = Annotated[datetime, PlainSerializer(iso_utc, return_type=str),
                    WithJsonSchema({"type": "string", "format": "date-time", "examples": ["2026-11-27T14:15:00Z"]})]


class ErrorBody(Body):
    """Every failure: `{"error": CODE, "message": TEXT}` (CLI `--json` on stdout, admin API)."""

    error: str = Field(description="stable error code: one of the error table's (service/desk/error_table.py: "
                                   + ", ".join(ERRORS) + "), or, from in front of every route: unauthorized, "
                                   "not_found, method_not_allowed, body_timeout, too_large")
    message: str


# --- one user --------------------------------------------------------------------------------------


class ConnectLinkBody(Body):
    """`fitglue link EMAIL --json`: the Connect link, for the caller only."""

    url: str = Field(json_schema_extra={"format": "uri"})
    expires_at: UtcTime


class RefreshBody(Body):
    """`fitglue refresh EMAIL --json`: one refresh's result."""

    email: str
    status: ConnectionStatus
    refreshed: bool
    expires_at: UtcTime | None
    error: str | None


class RefreshFailureBody(ErrorBody):
    """A refresh that failed: the error, plus the refresh object when the refresh ran."""

    result: RefreshBody | None = Field(None, description="the refresh object, when the refresh ran")


class RefreshDueBody(Body):
    """`fitglue refresh --due --json`: counts plus one refresh object per token that was due."""

    refreshed: int
    failed: int
    results: list[RefreshBody]

    @classmethod
    def of(cls, result: Any) -> Self:
        results = list(result)
        return cls(refreshed=sum(1 for r in results if r.refreshed), failed=sum(1 for r in results if r.failed),
                   results=[RefreshBody.of(r) for r in results])


class DisconnectBody(Body):
    """`fitglue disconnect EMAIL --json`: `deauthorized` only when Strava confirmed it."""

    email: str
    status: ConnectionStatus
    deauthorized: bool
    warning: str | None


class ForgetBody(Body):
    """`fitglue forget EMAIL --json`: the anonymous label the audit log now uses, rows deleted per table."""

    forgotten: str | None
    deauthorized: bool
    warning: str | None
    deleted: dict[str, int]


class KeyRotationBody(Body):
    """`POST keys/rotate`: connections re-encrypted, and those no configured key can read."""

    rotated: int
    unreadable: int


# --- the push subscription -----------------------------------------------------------------------


class SubscriptionBody(Body):
    id: int
    callback_url: str


class RegistrationRecordBody(Body):
    at: UtcTime
    outcome: str = Field(description="unchanged, repaired or failed")
    error: str | None


class WebhookStatusBody(Body):
    """`fitglue webhook status --json`: the live subscription at Strava and what we know locally."""

    subscription: SubscriptionBody | None
    callback_matches: bool
    last_event_at: UtcTime | None
    last_registration: RegistrationRecordBody | None


class RegistrationStepBody(Body):
    step: str
    ok: bool
    description: str


class WebhookRegistrationBody(WebhookStatusBody):
    """`fitglue webhook register --json`: the status plus what the repair checked, deleted and created."""

    steps: list[RegistrationStepBody]

    @classmethod
    def of(cls, result: Any) -> Self:
        return cls.model_validate({**WebhookStatusBody.of(result.status).model_dump(), "steps": result.steps})


class RegistrationFailureBody(WebhookRegistrationBody):
    """A failed repair: the error (`registration_failed`) plus the whole report."""

    error: str
    message: str

    @classmethod
    def failed(cls, report: Any) -> Self:
        return cls.model_validate({**WebhookRegistrationBody.of(report).model_dump(), "error": "registration_failed",
                                   "message": report.error or "registration failed"})


# --- budgets, queue, audit -----------------------------------------------------------------------


class WindowBody(Body):
    limit: int
    usage: int | None = Field(description="null before any Strava header was seen in the current window")
    resets_at: UtcTime


class BudgetBody(Body):
    fifteen_min: WindowBody = Field(alias="15min")
    daily: WindowBody


class RateLimitBody(Body):
    """`fitglue ratelimit --json`: each budget's windows, when Strava last reported, jobs waiting."""

    overall: BudgetBody
    read: BudgetBody
    observed_at: UtcTime | None
    queued_jobs: int

    @classmethod
    def of(cls, result: Any) -> Self:
        budgets = {budget: {str(window): usage for window, usage in windows.items()}
                   for budget, windows in result.budgets.items()}
        return cls.model_validate({**budgets, "observed_at": result.observed_at, "queued_jobs": result.queued_jobs})


class JobBody(Body):
    """One job of the retry queue."""

    id: int
    kind: str = Field(description=f"what the job does: {', '.join(JobKind)}")
    state: JobState
    priority: int
    attempts: int
    run_after: UtcTime
    waiting_for: str | None
    last_error: str | None
    user_id: int | None
    payload: dict[str, Any]
    created_at: UtcTime
    updated_at: UtcTime | None
    finished_at: UtcTime | None


class JobsBody(Body):
    """`fitglue jobs --json`: newest first."""

    jobs: list[JobBody]

    @classmethod
    def of(cls, result: Any) -> Self:
        return cls(jobs=[JobBody.of(job) for job in result])


class RetriedBody(Body):
    """`fitglue jobs retry --failed --json`."""

    retried: int
    job_ids: list[int]

    @classmethod
    def of(cls, result: Any) -> Self:
        return cls(retried=len(result.job_ids), job_ids=list(result.job_ids))


class AuditEntryBody(Body):
    id: int
    at: UtcTime
    actor: str = Field(description="cli:<os user>, slack:<user id> or admin-api")
    action: str
    target: str | None
    result: str
    detail: str | None
    duration_ms: int | None


class AuditBody(Body):
    """`GET audit`: a page of entries, newest first; `next_before` is the `before` of the next page."""

    entries: list[AuditEntryBody]
    next_before: int | None

    @classmethod
    def page(cls, entries: Iterable[Any], limit: int) -> Self:
        listed = [AuditEntryBody.of(e) for e in entries]
        return cls(entries=listed, next_before=listed[-1].id if len(listed) == limit else None)
