"""The one verdict on a Strava grant: which needed permissions are missing, and how much that matters.

FitGlue uses Strava as a source (it reads activities: ``activity:read``, or ``activity:read_all``
to see private ones too) and as a destination (it writes activities: ``activity:write``), and reads
the profile to identify the athlete (``profile:read_all``). The article's "Permissions Requested"
section is the source of these rules.

Every place that judges a grant takes its answer from ``grant_verdict``: the Connect result page
(and whether the link is used up), the Connect landing page, the diagnosis, the App Home and the
``--json`` outputs. The scope names and what each shortfall costs are words of ``troubleshooting.vocabulary``;
what they mean in sentences is the knowledge file's ``permissions`` section. Pure: no I/O, no
imports from ``service`` or ``bot``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from troubleshooting.vocabulary import ACTIVITY_READ_SCOPES, Need, Scope, Severity


@dataclass(frozen=True)
class Shortfall:
    """One thing the grant lacks: the scope to ask for again and what is lost without it."""

    scope: Scope
    need: Need
    blocking: bool  # True: source or destination cannot work at all


@dataclass(frozen=True)
class GrantVerdict:
    """What a set of granted scopes means for FitGlue.

    ``severity`` is ``error`` when source or destination cannot work, ``warning`` when only
    private activities or the profile are missing, ``ok`` when everything asked for was granted.
    """

    granted: frozenset[str]
    shortfalls: tuple[Shortfall, ...]

    @property
    def complete(self) -> bool:
        """Everything FitGlue needs was granted: the only grant that uses a Connect link up."""
        return not self.shortfalls

    @property
    def severity(self) -> Severity:
        if any(s.blocking for s in self.shortfalls):
            return Severity.ERROR
        return Severity.WARNING if self.shortfalls else Severity.OK

    @property
    def missing_scopes(self) -> tuple[str, ...]:
        """The scopes to grant again, reading first (e.g. ``("activity:write", "profile:read_all")``)."""
        return tuple(s.scope for s in self.shortfalls)

    @property
    def can_read_activities(self) -> bool:
        return bool(self.granted & ACTIVITY_READ_SCOPES)

    @property
    def can_write_activities(self) -> bool:
        return Scope.ACTIVITY_WRITE in self.granted

    @property
    def sync_works(self) -> bool:
        """Source and destination both work: whatever is missing only narrows what FitGlue sees."""
        return not any(s.blocking for s in self.shortfalls)

    @property
    def sync_sentence(self) -> str | None:
        """The one sentence on whether syncing works with this grant (None when nothing is missing).

        Said once for the whole grant, never per shortfall: "still works" is true only when no
        blocking scope is missing, whatever else is.
        """
        if self.complete:
            return None
        if self.sync_works:
            return "Syncing itself still works."
        blocking = [s.scope for s in self.shortfalls if s.blocking]
        return "Syncing does not work until " + " and ".join(blocking) + (" is" if len(blocking) == 1 else " are") \
            + " granted."

    @property
    def status_reason(self) -> str:
        """The connection's status reason while it is connected with this grant."""
        if self.complete:
            return "connected with every permission FitGlue needs"
        return "connected without " + ", ".join(self.missing_scopes)


def parse_scopes(raw: str | None) -> frozenset[str]:
    """Scopes from Strava's ``scope`` answer or our stored copy: comma- or space-separated."""
    if not raw:
        return frozenset()
    return frozenset(part.strip() for part in raw.replace(" ", ",").split(",") if part.strip())


def grant_verdict(granted: Iterable[str]) -> GrantVerdict:
    """The verdict on a grant (an iterable of scope names; order and duplicates do not matter)."""
    scopes = frozenset(granted)
    shortfalls: list[Shortfall] = []
    if not scopes & ACTIVITY_READ_SCOPES:
        shortfalls.append(Shortfall(Scope.ACTIVITY_READ_ALL, Need.SOURCE, blocking=True))
    elif Scope.ACTIVITY_READ_ALL not in scopes:
        shortfalls.append(Shortfall(Scope.ACTIVITY_READ_ALL, Need.PRIVATE_ACTIVITIES, blocking=False))
    if Scope.ACTIVITY_WRITE not in scopes:
        shortfalls.append(Shortfall(Scope.ACTIVITY_WRITE, Need.DESTINATION, blocking=True))
    if Scope.PROFILE_READ_ALL not in scopes:
        shortfalls.append(Shortfall(Scope.PROFILE_READ_ALL, Need.PROFILE, blocking=False))
    return GrantVerdict(granted=scopes, shortfalls=tuple(shortfalls))
