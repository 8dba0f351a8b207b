"""grant_verdict: the one judgement of a Strava grant, and the missing_permissions finding built on it."""

from __future__ import annotations

import itertools

import pytest

from troubleshooting import diagnose, grant_verdict, parse_scopes
from troubleshooting.vocabulary import REQUESTED_SCOPES

from .builders import healthy

ALL = frozenset(REQUESTED_SCOPES)
EVERY_SCOPE = ("read", "activity:read", "activity:read_all", "activity:write", "profile:read_all")


@pytest.mark.parametrize(("granted", "severity", "missing"), [
    (ALL, "ok", ()),
    (ALL - {"profile:read_all"}, "warning", ("profile:read_all",)),
    ((ALL - {"activity:read_all"}) | {"activity:read"}, "warning", ("activity:read_all",)),
    (ALL - {"activity:write"}, "error", ("activity:write",)),
    (ALL - {"activity:read_all"}, "error", ("activity:read_all",)),
    ({"read"}, "error", ("activity:read_all", "activity:write", "profile:read_all")),
    (set(), "error", ("activity:read_all", "activity:write", "profile:read_all")),
])
def test_verdicts(granted, severity, missing):
    verdict = grant_verdict(granted)
    assert verdict.severity == severity and verdict.missing_scopes == missing
    assert verdict.complete == (severity == "ok")
    assert verdict.status_reason == ("connected with every permission FitGlue needs" if not missing
                                     else "connected without " + ", ".join(missing))


def test_parse_scopes_takes_commas_and_spaces():
    assert parse_scopes("read,activity:write activity:read_all, ") == {"read", "activity:write", "activity:read_all"}
    assert parse_scopes(None) == frozenset() == parse_scopes("")


@pytest.mark.parametrize("granted", [frozenset(c) for n in range(len(EVERY_SCOPE) + 1)
                                     for c in itertools.combinations(EVERY_SCOPE, n)])
def test_the_finding_says_what_the_verdict_says_for_every_grant(granted):
    verdict = grant_verdict(granted)
    finding = diagnose(healthy(granted_scopes=granted)).finding("missing_permissions")
    assert (finding.severity if finding else "ok") == verdict.severity
    if finding is not None:
        assert finding.audience == "user" and "send_connect_link" in finding.actions
    if not verdict.can_read_activities:
        assert "activity read" in finding.detail


@pytest.mark.parametrize(("granted", "sentence"), [
    ({"read", "activity:read_all", "activity:write", "profile:read_all"}, None),
    ({"read", "activity:read_all", "activity:write"}, "Syncing itself still works."),
    ({"read", "activity:read", "activity:write"}, "Syncing itself still works."),
    ({"read", "activity:read_all", "profile:read_all"}, "Syncing does not work until activity:write is granted."),
    ({"read"}, "Syncing does not work until activity:read_all and activity:write are granted."),
])
def test_whether_syncing_works_is_one_sentence_for_the_whole_grant(granted, sentence):
    """Review: a read-only grant was told "syncing itself still works" by the profile line."""
    assert grant_verdict(granted).sync_sentence == sentence
