"""Settings of the stand-in and the record it keeps of every request."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

# Strava's scopes, in the order the consent page lists them.
KNOWN_SCOPES: tuple[str, ...] = (
    "read",
    "read_all",
    "profile:read_all",
    "profile:write",
    "activity:read",
    "activity:read_all",
    "activity:write",
)

ACCESS_TOKEN_LIFETIME_S = 6 * 3600
REUSE_ACCESS_TOKEN_ABOVE_S = 3600
AUTH_CODE_LIFETIME_S = 600


@dataclass
class StandinConfig:
    client_id: str = "1001"
    client_secret: str = "sandbox-secret"
    # None = unlimited; when this many athletes are connected, a new athlete is refused at authorize.
    athlete_capacity: int | None = None
    read_limits: tuple[int, int] = (100, 1000)  # 15 min, daily: X-ReadRateLimit-*
    overall_limits: tuple[int, int] = (200, 2000)  # 15 min, daily: X-RateLimit-*
    latency_s: float = 0.0  # added before every response
    body_read_timeout_s: float = 10.0  # a request body not complete by then is answered 408


@dataclass
class CallRecord:
    """One request the stand-in received. ``status`` stays None while (or if never) answered."""

    method: str
    path: str
    at: datetime
    athlete_id: int | None = None
    status: int | None = None
