"""Every failure on demand: what the stand-in's control page (and its JSON routes) can do to "Strava".

Each control stands for something that happens at Strava: an athlete signs up; the app's athlete
capacity changes in its settings; other apps' traffic (or our own) uses the read budget up; Strava is
down; the push subscription disappears; an athlete revokes access in their settings (Strava then
pushes a deauthorization event, unless it is lost); an athlete records, edits or deletes an activity;
a refresh token is rotated somewhere else, so the one the app holds stops working.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from standin.standin import StravaStandin

# Names for new sandbox athletes, so a consent page lists people rather than five "Sandy Runner"s.
DEFAULT_NAMES = (("Sandy", "Runner"), ("Kip", "Stride"), ("Paula", "Pace"), ("Eddy", "Cadence"),
                 ("Mo", "Tempo"), ("Rosa", "Ridge"), ("Finn", "Fartlek"), ("Lena", "Lactate"),
                 ("Theo", "Threshold"), ("Vera", "Vo2"))

OutageKind = Literal["5xx", "timeout"]
WINDOWS = ("15min", "daily")


@dataclass(frozen=True)
class Outage:
    """Until ``until``, every API, token and subscription call answers 503 (``5xx``) or hangs
    (``timeout``), as Strava does when it is down."""

    until: datetime
    kind: OutageKind

    def active(self, now: datetime) -> bool:
        return now < self.until


def next_default_name(standin: StravaStandin) -> tuple[str, str]:
    """The first default name no athlete has; numbered once all are taken."""
    taken = {(a.firstname, a.lastname) for a in standin.state.athletes.values()}
    for name in DEFAULT_NAMES:
        if name not in taken:
            return name
    first, last = DEFAULT_NAMES[len(standin.state.athletes) % len(DEFAULT_NAMES)]
    return first, f"{last} {len(standin.state.athletes) + 1}"


def create_athlete(standin: StravaStandin, firstname: str = "", lastname: str = "") -> int:
    default_first, default_last = next_default_name(standin)
    return standin.add_athlete(firstname=firstname.strip()[:40] or default_first,
                               lastname=lastname.strip()[:40] or default_last)


def set_capacity(standin: StravaStandin, capacity: int | None) -> None:
    """The app's athlete capacity (None: no limit); whoever follows it (the sandbox's settings) hears.
    A follower may refuse it with ValueError (the sandbox's settings bound the capacity): then nothing
    changes, so the stand-in and the service never disagree."""
    if capacity is not None and capacity < 1:
        raise ValueError("capacity must be at least 1 (or none for no limit)")
    for hook in standin.on_capacity_change:
        hook(capacity)
    standin.config.athlete_capacity = capacity


def exhaust_read_budget(standin: StravaStandin, window: str) -> None:
    """Use up the read budget's 15-minute or daily window: the next counted call is answered 429."""
    if window not in WINDOWS:
        raise ValueError(f"window must be one of {', '.join(WINDOWS)}")
    standin.limits.read.exhaust(standin.clock.now(), daily=window == "daily")


def start_outage(standin: StravaStandin, minutes: int, kind: OutageKind = "5xx") -> Outage | None:
    """Strava down for ``minutes`` (0 ends an outage); returns it."""
    if kind not in ("5xx", "timeout"):
        raise ValueError("kind must be 5xx or timeout")
    if not 0 <= minutes <= 24 * 60:
        raise ValueError("minutes must be between 0 and 1440")
    standin.outage = Outage(standin.clock.now() + timedelta(minutes=minutes), kind) if minutes else None
    return standin.outage


def delete_subscription(standin: StravaStandin) -> bool:
    """The push subscription disappears (as when it is deleted by someone else); False if there was none."""
    existing = standin.subscription
    return existing is not None and standin.delete_subscription(str(existing["id"]))


def rotate_refresh_token(standin: StravaStandin, athlete_id: int) -> int:
    """The athlete's refresh tokens are replaced elsewhere: the ones the app holds stop working (its next
    refresh is answered 400 invalid, the sign of a dead grant). Returns how many were invalidated."""
    if athlete_id not in standin.state.grants:
        raise LookupError(f"athlete {athlete_id} has not authorized the app")
    rotated = 0
    for refresh in standin.state.refresh_tokens.values():
        if refresh.athlete_id == athlete_id and not refresh.revoked:
            refresh.revoked = True
            rotated += 1
    return rotated


async def activity_event(standin: StravaStandin, activity_id: int, aspect: Literal["update", "delete"]
                         ) -> int | None:
    """The athlete edits (renames) or deletes an activity; Strava pushes the event when a push
    subscription exists. The HTTP status the callback answered (0: no answer; None: no subscription,
    so no event); LookupError without such an activity."""
    activity = standin.state.activities.get(activity_id)
    if activity is None:
        raise LookupError(f"no activity {activity_id}")
    updates: dict[str, str] = {}
    if aspect == "update":
        activity.name = f"{activity.name.split(' (edited')[0]} (edited)"
        updates = {"title": activity.name}
    else:
        del standin.state.activities[activity_id]
    if standin.subscription is None:
        return None
    return await standin.push_event(standin.event(aspect, "activity", activity_id, activity.athlete_id, updates))


def status(standin: StravaStandin) -> dict[str, Any]:
    """What the control page shows, as JSON (no tokens)."""
    now = standin.clock.now()
    read_15, read_day = standin.limits.read.usage(now)
    outage = standin.outage if standin.outage is not None and standin.outage.active(now) else None
    return {
        "athletes": [{"id": a.id, "firstname": a.firstname, "lastname": a.lastname,
                      "connected": a.id in standin.state.grants,
                      "scopes": list(standin.state.grants.get(a.id, ())),
                      "activities": [act.id for act in standin.state.activities_of(a.id)]}
                     for a in standin.state.athletes.values()],
        "capacity": standin.config.athlete_capacity,
        "connected": standin.state.connected_count(),
        "read_budget": {"15min": {"usage": read_15, "limit": standin.limits.read.limits[0]},
                        "daily": {"usage": read_day, "limit": standin.limits.read.limits[1]}},
        "outage": None if outage is None else {"until": outage.until.strftime("%Y-%m-%dT%H:%M:%SZ"),
                                               "kind": outage.kind},
        "subscription": None if standin.subscription is None else {
            "id": standin.subscription["id"], "callback_url": standin.subscription["callback_url"]},
    }
