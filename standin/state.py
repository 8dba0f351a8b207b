"""The stand-in's world as plain data: athletes, activities, codes, tokens, grants.

No I/O and no clock of its own: every time-dependent method takes ``now``.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from service.core.clock import to_epoch
from standin.config import (
    ACCESS_TOKEN_LIFETIME_S,
    AUTH_CODE_LIFETIME_S,
    KNOWN_SCOPES,
    REUSE_ACCESS_TOKEN_ABOVE_S,
)

FIRST_ATHLETE_ID = 134815
FIRST_ACTIVITY_ID = 1360128428


def new_token() -> str:
    """40 hex digits, the shape of Strava's codes and tokens."""
    return secrets.token_hex(20)


def ordered_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    wanted = set(scopes)
    return tuple(s for s in KNOWN_SCOPES if s in wanted)


@dataclass
class Athlete:
    id: int
    firstname: str
    lastname: str
    created_at: datetime

    @property
    def username(self) -> str:
        return f"{self.firstname}{self.lastname}{self.id}".lower().replace(" ", "")


@dataclass
class Activity:
    id: int
    athlete_id: int
    name: str
    sport_type: str
    start_date: datetime
    private: bool = False
    description: str | None = None
    elapsed_time: int = 1800
    moving_time: int = 1750
    distance: float = 5000.0
    total_elevation_gain: float = 20.0
    trainer: bool = False
    commute: bool = False
    hide_from_home: bool = False
    gear_id: str | None = None
    external_id: str | None = None


@dataclass
class AuthCode:
    code: str
    athlete_id: int
    scopes: tuple[str, ...]
    expires_at: datetime


@dataclass
class AccessToken:
    token: str
    athlete_id: int
    scopes: frozenset[str]
    expires_at: datetime
    revoked: bool = False

    def live(self, now: datetime) -> bool:
        return not self.revoked and now < self.expires_at

    def seconds_left(self, now: datetime) -> int:
        return to_epoch(self.expires_at) - to_epoch(now)


@dataclass
class RefreshToken:
    token: str
    athlete_id: int
    scopes: frozenset[str]
    access_token: str  # the newest access token issued through this refresh token's chain
    revoked: bool = False


@dataclass
class SandboxState:
    athletes: dict[int, Athlete] = field(default_factory=dict)
    activities: dict[int, Activity] = field(default_factory=dict)
    codes: dict[str, AuthCode] = field(default_factory=dict)
    access_tokens: dict[str, AccessToken] = field(default_factory=dict)
    refresh_tokens: dict[str, RefreshToken] = field(default_factory=dict)
    # athlete id -> scopes of their latest approval; an athlete is "connected" while present.
    grants: dict[int, tuple[str, ...]] = field(default_factory=dict)
    issued_tokens: set[str] = field(default_factory=set)
    _next_activity_id: int = FIRST_ACTIVITY_ID

    # athletes and activities -------------------------------------------------------------------
    def add_athlete(self, now: datetime, athlete_id: int | None, firstname: str, lastname: str) -> Athlete:
        if athlete_id is None:
            athlete_id = max(self.athletes, default=FIRST_ATHLETE_ID - 1) + 1
        if athlete_id in self.athletes:
            raise ValueError(f"athlete {athlete_id} already exists")
        athlete = Athlete(athlete_id, firstname, lastname, now)
        self.athletes[athlete_id] = athlete
        return athlete

    def add_activity(
        self, athlete_id: int, name: str, sport_type: str, start_date: datetime, private: bool
    ) -> Activity:
        if athlete_id not in self.athletes:
            raise KeyError(f"no athlete {athlete_id}")
        activity = Activity(self._next_activity_id, athlete_id, name, sport_type, start_date, private)
        self._next_activity_id += 1
        self.activities[activity.id] = activity
        return activity

    def activities_of(self, athlete_id: int) -> list[Activity]:
        return [a for a in self.activities.values() if a.athlete_id == athlete_id]

    # authorization -----------------------------------------------------------------------------
    def is_connected(self, athlete_id: int) -> bool:
        return athlete_id in self.grants

    def connected_count(self) -> int:
        return len(self.grants)

    def approve(self, athlete_id: int, scopes: Iterable[str], now: datetime) -> AuthCode:
        granted = ordered_scopes(scopes)
        self.grants[athlete_id] = granted
        code = AuthCode(new_token(), athlete_id, granted, now + timedelta(seconds=AUTH_CODE_LIFETIME_S))
        self.codes[code.code] = code
        return code

    def redeem_code(self, code: str, now: datetime) -> tuple[AccessToken, RefreshToken] | None:
        """Single use: the code is gone after this call, whether it was still valid or not."""
        found = self.codes.pop(code, None)
        if found is None or now >= found.expires_at or found.athlete_id not in self.grants:
            return None
        scopes = frozenset(found.scopes)
        access = self._issue_access(found.athlete_id, scopes, now)
        return access, self._issue_refresh(found.athlete_id, scopes, access.token)

    def refresh(self, refresh_token: str, now: datetime) -> tuple[AccessToken, RefreshToken] | None:
        """Strava's one-hour rule, with rotation whenever a new access token is issued."""
        old = self.refresh_tokens.get(refresh_token)
        if old is None or old.revoked:
            return None
        current = self.access_tokens[old.access_token]
        if current.live(now) and current.seconds_left(now) > REUSE_ACCESS_TOKEN_ABOVE_S:
            return current, old
        access = self._issue_access(old.athlete_id, old.scopes, now)
        old.revoked = True
        return access, self._issue_refresh(old.athlete_id, old.scopes, access.token)

    def live_access_token(self, token: str, now: datetime) -> AccessToken | None:
        found = self.access_tokens.get(token)
        return found if found is not None and found.live(now) else None

    def revoke(self, athlete_id: int) -> bool:
        """Kill every token and code of the athlete; True when they were connected."""
        for access in self.access_tokens.values():
            if access.athlete_id == athlete_id:
                access.revoked = True
        for refresh in self.refresh_tokens.values():
            if refresh.athlete_id == athlete_id:
                refresh.revoked = True
        for code in [c for c, v in self.codes.items() if v.athlete_id == athlete_id]:
            del self.codes[code]
        return self.grants.pop(athlete_id, None) is not None

    def _issue_access(self, athlete_id: int, scopes: frozenset[str], now: datetime) -> AccessToken:
        access = AccessToken(
            new_token(), athlete_id, scopes, now + timedelta(seconds=ACCESS_TOKEN_LIFETIME_S)
        )
        self.access_tokens[access.token] = access
        self.issued_tokens.add(access.token)
        return access

    def _issue_refresh(self, athlete_id: int, scopes: frozenset[str], access_token: str) -> RefreshToken:
        refresh = RefreshToken(new_token(), athlete_id, scopes, access_token)
        self.refresh_tokens[refresh.token] = refresh
        self.issued_tokens.add(refresh.token)
        return refresh
