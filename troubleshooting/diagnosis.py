"""The diagnosis engine: facts in, ordered and consistent findings out. No I/O."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from troubleshooting.facts import ConnectionFacts, Thresholds
from troubleshooting.knowledge import Knowledge, load_knowledge
from troubleshooting.rules import HEALTHY_RULE, NEEDS, RULES, VARIANT
from troubleshooting.serialize import DiagnosisBody, FindingBody, facts_to_dict
from troubleshooting.vocabulary import (
    FINDING_IDS,
    SEVERITY_ORDER,
    Action,
    Article,
    Audience,
    ConnectionStatus,
    FindingId,
    Severity,
)

DEFAULT_THRESHOLDS = Thresholds()

_ALL_STATUSES = frozenset(ConnectionStatus)
_NOT_CONNECTED = _ALL_STATUSES - {ConnectionStatus.CONNECTED}
_ONLY_CONNECTED = frozenset({ConnectionStatus.CONNECTED})

# The statuses under which a finding may appear at all. This is the engine's guarantee against
# contradictions, on top of each rule's own checks: the status findings are mutually exclusive
# (revoked never with needs_reauth), token/refresh/permission/silence findings need a live
# connection (not_connected suppresses them), capacity and failed attempts only matter while the
# user is not connected.
ALLOWED_STATUSES: dict[FindingId, frozenset[ConnectionStatus]] = {
    FindingId.UNKNOWN_USER: frozenset({ConnectionStatus.UNKNOWN_USER}),
    FindingId.NOT_CONNECTED: frozenset({ConnectionStatus.NOT_CONNECTED}),
    FindingId.REVOKED: frozenset({ConnectionStatus.REVOKED}),
    FindingId.NEEDS_REAUTH: frozenset({ConnectionStatus.NEEDS_REAUTH}),
    FindingId.AUTHORIZATION_FAILED: _NOT_CONNECTED - {ConnectionStatus.UNKNOWN_USER},
    FindingId.APP_CAPACITY_REACHED: _NOT_CONNECTED,
    FindingId.STRAVA_APP_MISCONFIGURED: _ALL_STATUSES - {ConnectionStatus.UNKNOWN_USER},
    FindingId.MISSING_PERMISSIONS: _ONLY_CONNECTED,
    FindingId.TOKEN_REFRESH_FAILING: _ONLY_CONNECTED,
    FindingId.WEBHOOK_MISSING: _ALL_STATUSES,
    FindingId.WEBHOOK_SILENT: _ONLY_CONNECTED,
    FindingId.EVENTS_UNDELIVERED: _ALL_STATUSES - {ConnectionStatus.UNKNOWN_USER},
    FindingId.RATE_LIMITED: _ALL_STATUSES,
    FindingId.HEALTHY: _ONLY_CONNECTED,
}

STATUS_TEXT: dict[str, str] = {
    ConnectionStatus.UNKNOWN_USER: "no such FitGlue user",
    ConnectionStatus.NOT_CONNECTED: "not connected",
    ConnectionStatus.CONNECTED: "connected",
    ConnectionStatus.NEEDS_REAUTH: "needs re-authorization",
    ConnectionStatus.REVOKED: "access revoked by the athlete",
}


def severity_rank(severity: str) -> int:
    """0 for the most severe (error) up to 3 for ok."""
    return SEVERITY_ORDER.index(severity)


@dataclass(frozen=True)
class Finding:
    id: FindingId
    severity: Severity
    title: str
    detail: str
    remedy: tuple[str, ...]
    actions: tuple[Action, ...]
    article: Article
    audience: Audience

    @property
    def rank(self) -> tuple[int, int]:
        """Sort key: severity first, then the stable vocabulary order."""
        return (severity_rank(self.severity), FINDING_IDS.index(self.id))

    def to_dict(self) -> dict[str, Any]:
        return FindingBody.of(self).to_json()


def sort_findings(findings: list[Finding] | tuple[Finding, ...]) -> tuple[Finding, ...]:
    return tuple(sorted(findings, key=lambda f: f.rank))


@dataclass(frozen=True, eq=False)
class Diagnosis:
    email: str | None
    athlete_id: int | None
    status: ConnectionStatus
    findings: tuple[Finding, ...]
    facts: dict[str, Any]

    @property
    def severity(self) -> str:
        """The most severe finding's severity."""
        return self.findings[0].severity if self.findings else Severity.OK

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
        return DiagnosisBody.of(self).to_json()


class _Values(dict[str, str]):
    def __init__(self, finding_id: str, values: dict[str, str]) -> None:
        super().__init__(values)
        self.finding_id = str(finding_id)  # a plain word in the message, whatever was passed

    def __missing__(self, key: str) -> str:
        raise KeyError(f"finding {self.finding_id!r}: its rule supplied no value for placeholder {{{key}}}")


def _fill(template: str, values: _Values) -> str:
    return " ".join(template.format_map(values).split())


def _finding(knowledge: Knowledge, finding_id: FindingId, common: dict[str, str], found: dict[str, str]) -> Finding:
    values = dict(found)
    variant = values.pop(VARIANT, None)
    if NEEDS in values:
        values.update(knowledge.shortfall_values(values.pop(NEEDS).split()))
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
    if not findings and facts.status in ALLOWED_STATUSES[FindingId.HEALTHY]:
        found = HEALTHY_RULE(facts, thresholds)
        if found is not None:
            findings.append(_finding(kb, FindingId.HEALTHY, common, found))
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
    status_finding = diagnosis.status if diagnosis.status != ConnectionStatus.CONNECTED else None
    problems = [
        f for f in diagnosis.findings if f.severity in (Severity.ERROR, Severity.WARNING) and f.id != status_finding
    ]
    if diagnosis.healthy:
        return line + ", healthy"
    if problems:
        noun = "problem" if len(problems) == 1 else "problems"
        # Beside a status that is itself the problem (needs re-authorization, …), these come on top.
        also = "also " if status_finding is not None else ""
        line += f" · {also}{len(problems)} {noun}, most severe: {problems[0].title}"
    elif diagnosis.status == ConnectionStatus.CONNECTED:
        notes = [f for f in diagnosis.findings if f.severity == Severity.INFO]
        if notes:
            line += f" · note: {notes[0].title}"
    return line
