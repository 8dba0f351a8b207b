"""The diagnosis engine: facts in, ordered and consistent findings out. No I/O."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from troubleshooting.facts import ConnectionFacts, Thresholds
from troubleshooting.knowledge import Knowledge, load_knowledge
from troubleshooting.rules import HEALTHY_RULE, RULES
from troubleshooting.serialize import facts_to_dict
from troubleshooting.vocabulary import FINDING_IDS, SEVERITY_ORDER, STATUSES

DEFAULT_THRESHOLDS = Thresholds()

_ALL_STATUSES = frozenset(STATUSES)
_NOT_CONNECTED = _ALL_STATUSES - {"connected"}

# The statuses under which a finding may appear at all. This is the engine's guarantee against
# contradictions, on top of each rule's own checks: the status findings are mutually exclusive
# (revoked never with needs_reauth), token/refresh/permission/silence findings need a live
# connection (not_connected suppresses them), capacity and failed attempts only matter while the
# user is not connected.
ALLOWED_STATUSES: dict[str, frozenset[str]] = {
    "unknown_user": frozenset({"unknown_user"}),
    "not_connected": frozenset({"not_connected"}),
    "revoked": frozenset({"revoked"}),
    "needs_reauth": frozenset({"needs_reauth"}),
    "authorization_failed": _NOT_CONNECTED - {"unknown_user"},
    "app_capacity_reached": _NOT_CONNECTED,
    "strava_app_misconfigured": _ALL_STATUSES - {"unknown_user"},
    "missing_permissions": frozenset({"connected"}),
    "token_refresh_failing": frozenset({"connected"}),
    "webhook_missing": _ALL_STATUSES,
    "webhook_silent": frozenset({"connected"}),
    "events_undelivered": _ALL_STATUSES - {"unknown_user"},
    "rate_limited": _ALL_STATUSES,
    "healthy": frozenset({"connected"}),
}

STATUS_TEXT: dict[str, str] = {
    "unknown_user": "no such FitGlue user",
    "not_connected": "not connected",
    "connected": "connected",
    "needs_reauth": "needs re-authorization",
    "revoked": "access revoked by the athlete",
}


def severity_rank(severity: str) -> int:
    """0 for the most severe (error) up to 3 for ok."""
    return SEVERITY_ORDER.index(severity)


@dataclass(frozen=True)
class Finding:
    id: str
    severity: str
    title: str
    detail: str
    remedy: tuple[str, ...]
    actions: tuple[str, ...]
    article: str
    audience: str

    @property
    def rank(self) -> tuple[int, int]:
        """Sort key: severity first, then the stable vocabulary order."""
        return (severity_rank(self.severity), FINDING_IDS.index(self.id))

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "severity": self.severity,
            "title": self.title,
            "detail": self.detail,
            "remedy": list(self.remedy),
            "actions": list(self.actions),
            "article": self.article,
            "audience": self.audience,
        }


def sort_findings(findings: list[Finding] | tuple[Finding, ...]) -> tuple[Finding, ...]:
    return tuple(sorted(findings, key=lambda f: f.rank))


@dataclass(frozen=True, eq=False)
class Diagnosis:
    email: str | None
    athlete_id: int | None
    status: str
    findings: tuple[Finding, ...]
    facts: dict[str, Any]

    @property
    def severity(self) -> str:
        """The most severe finding's severity."""
        return self.findings[0].severity if self.findings else "ok"

    @property
    def healthy(self) -> bool:
        return [f.id for f in self.findings] == ["healthy"]

    def finding(self, finding_id: str) -> Finding | None:
        return next((f for f in self.findings if f.id == finding_id), None)

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(f.id for f in self.findings)

    def to_dict(self) -> dict[str, Any]:
        """Exactly the DESIGN.md ``diagnose --json`` object (plus ``audience`` per finding)."""
        return {
            "email": self.email,
            "athlete_id": self.athlete_id,
            "status": self.status,
            "findings": [f.to_dict() for f in self.findings],
            "facts": self.facts,
        }


class _Values(dict[str, str]):
    def __init__(self, finding_id: str, values: dict[str, str]) -> None:
        super().__init__(values)
        self.finding_id = finding_id

    def __missing__(self, key: str) -> str:
        raise KeyError(f"finding {self.finding_id!r}: its rule supplied no value for placeholder {{{key}}}")


def _fill(template: str, values: _Values) -> str:
    return " ".join(template.format_map(values).split())


def _finding(knowledge: Knowledge, finding_id: str, common: dict[str, str], found: dict[str, str]) -> Finding:
    values = dict(found)
    variant = values.pop("variant", None)
    entry = knowledge[finding_id].resolved(variant)
    filled = _Values(finding_id, {**common, **values})
    return Finding(
        id=finding_id,
        severity=entry.severity,
        title=_fill(entry.title, filled),
        detail=_fill(entry.detail, filled),
        remedy=tuple(_fill(step, filled) for step in entry.remedy),
        actions=entry.actions,
        article=entry.article,
        audience=entry.audience,
    )


def diagnose(
    facts: ConnectionFacts, thresholds: Thresholds = DEFAULT_THRESHOLDS, *, knowledge: Knowledge | None = None
) -> Diagnosis:
    """Findings for one connection, most severe first, never contradicting each other.

    ``healthy`` (severity ok) appears alone, and only when no info/warning/error finding fired.
    """
    kb = knowledge if knowledge is not None else load_knowledge()
    common = {
        "who": facts.who,
        "email": facts.email or facts.who,
        "athlete_id": str(facts.athlete_id) if facts.athlete_id is not None else "(unknown)",
        "status": STATUS_TEXT[facts.status],
    }
    findings: list[Finding] = []
    for finding_id, rule in RULES.items():
        if facts.status not in ALLOWED_STATUSES[finding_id]:
            continue
        found = rule(facts, thresholds)
        if found is not None:
            findings.append(_finding(kb, finding_id, common, found))
    if not findings and facts.status in ALLOWED_STATUSES["healthy"]:
        found = HEALTHY_RULE(facts, thresholds)
        if found is not None:
            findings.append(_finding(kb, "healthy", common, found))
    return Diagnosis(
        email=facts.email,
        athlete_id=facts.athlete_id,
        status=facts.status,
        findings=sort_findings(findings),
        facts=facts_to_dict(facts, thresholds),
    )


def summary_line(diagnosis: Diagnosis) -> str:
    """One line stating the outcome, e.g. ``alice@example.com — Strava: needs re-authorization``."""
    who = diagnosis.email or str(diagnosis.facts.get("who") or diagnosis.athlete_id or "unknown")
    line = f"{who} — Strava: {STATUS_TEXT[diagnosis.status]}"
    status_finding = diagnosis.status if diagnosis.status != "connected" else None
    problems = [
        f for f in diagnosis.findings if f.severity in ("error", "warning") and f.id != status_finding
    ]
    if diagnosis.healthy:
        return line + ", healthy"
    if problems:
        noun = "problem" if len(problems) == 1 else "problems"
        # Beside a status that is itself the problem (needs re-authorization, …), these come on top.
        also = "also " if status_finding is not None else ""
        line += f" · {also}{len(problems)} {noun}, most severe: {problems[0].title}"
    elif diagnosis.status == "connected":
        notes = [f for f in diagnosis.findings if f.severity == "info"]
        if notes:
            line += f" · note: {notes[0].title}"
    return line
