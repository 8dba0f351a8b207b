"""A diagnosis as JSON: the typed bodies (pydantic) and the JSON-safe ``facts`` object."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field

from troubleshooting.facts import ConnectionFacts, SubscriptionFacts, Thresholds
from troubleshooting.timefmt import iso
from troubleshooting.vocabulary import Action, Article, Audience, ConnectionStatus, FindingId, Severity


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, frozenset | set):
        return sorted(_plain(v) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def _subscription(facts: ConnectionFacts) -> dict[str, Any]:
    sub = facts.subscription
    if sub is None:
        note = "Strava is not configured" if not facts.strava_configured else "no subscription facts gathered"
        return {"checked": False, "note": note}
    out: dict[str, Any] = _plain(sub)
    if not facts.strava_configured:
        out["checked"] = False
        out["note"] = "Strava is not configured"
    elif not sub.checked:
        out["note"] = "the live subscription check did not run or failed; webhook findings are skipped"
    out["callback_matches"] = _callback_matches(sub) if out["checked"] else None
    return out


def _callback_matches(sub: SubscriptionFacts) -> bool:
    return bool(sub.exists) and sub.callback_url == sub.expected_callback_url


def facts_to_dict(facts: ConnectionFacts, thresholds: Thresholds) -> dict[str, Any]:
    """Every observation, JSON-safe: times as ISO 8601 UTC, scopes sorted, nested types as objects."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(facts):
        if f.name == "subscription":
            out["subscription"] = _subscription(facts)
        else:
            out[f.name] = _plain(getattr(facts, f.name))
    out["thresholds"] = _plain(thresholds)
    return out


class Body(BaseModel):
    """A JSON body (``--json``, admin API), read from a result's attributes (or from a mapping).

    The base of every body model, here and in ``service/desk/api_models.py``.
    """

    model_config = ConfigDict(from_attributes=True, frozen=True, extra="forbid", populate_by_name=True)

    @classmethod
    def of(cls, result: Any) -> Self:
        return cls.model_validate(result)

    def to_json(self) -> dict[str, Any]:
        """The JSON-ready dict (field aliases; enums as their words; times as the model serialises them)."""
        return self.model_dump(mode="json", by_alias=True)


class FindingBody(Body):
    """One finding as JSON (DESIGN.md "Diagnosis vocabulary"); ``audience`` says who must act."""

    id: FindingId
    severity: Severity
    title: str
    detail: str
    remedy: list[str] = Field(description="steps, in order")
    actions: list[Action] = Field(description="also the Slack buttons' action_ids")
    article: Article = Field(description="section anchor of the help article")
    audience: Audience = Field(description="who must act")


class DiagnosisBody(Body):
    """``fitglue diagnose WHO --json`` and ``GET /admin/api/users/{who}/diagnosis``."""

    email: str | None
    athlete_id: int | None
    status: ConnectionStatus
    findings: list[FindingBody] = Field(description="most severe first")
    facts: dict[str, Any] = Field(description="the observations the findings rest on (times ISO 8601 UTC); "
                                              "no secrets")
