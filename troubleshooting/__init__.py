"""Troubleshooting knowledge for FitGlue's Strava connections: facts in, findings out.

Pure: no I/O at diagnosis time (the packaged knowledge file is read once, on first use) and no
imports from ``service`` or ``bot``.
"""

from troubleshooting.diagnosis import (
    ALLOWED_STATUSES,
    STATUS_TEXT,
    Diagnosis,
    Finding,
    diagnose,
    severity_rank,
    sort_findings,
    summary_line,
)
from troubleshooting.facts import AttemptFacts, BudgetWindow, ConnectionFacts, SubscriptionFacts, Thresholds
from troubleshooting.knowledge import Entry, Knowledge, KnowledgeError, load_knowledge, parse_knowledge
from troubleshooting.permissions import GrantVerdict, Shortfall, grant_verdict, parse_scopes
from troubleshooting.vocabulary import (
    ACTIONS,
    ARTICLE_ANCHORS,
    AUDIENCES,
    FINDING_IDS,
    REQUESTED_SCOPES,
    SEVERITY_ORDER,
    STATUSES,
)

__all__ = [
    "ACTIONS",
    "ALLOWED_STATUSES",
    "ARTICLE_ANCHORS",
    "AUDIENCES",
    "FINDING_IDS",
    "REQUESTED_SCOPES",
    "SEVERITY_ORDER",
    "STATUSES",
    "STATUS_TEXT",
    "AttemptFacts",
    "BudgetWindow",
    "ConnectionFacts",
    "Diagnosis",
    "Entry",
    "Finding",
    "GrantVerdict",
    "Knowledge",
    "KnowledgeError",
    "Shortfall",
    "SubscriptionFacts",
    "Thresholds",
    "diagnose",
    "grant_verdict",
    "load_knowledge",
    "parse_knowledge",
    "parse_scopes",
    "severity_rank",
    "sort_findings",
    "summary_line",
]
