"""Strava HTTP client: OAuth calls, REST calls, push subscriptions, and Strava's failures mapped to a
few typed errors. Knows nothing of our database, web, desk or bot.

May import `service.core` only.
"""

from service.strava.client import StravaClient, StravaHooks, TokenGrant
from service.strava.errors import (
    AccessTokenInvalid,
    AppCredentialsRejected,
    BadAuthorizationCode,
    GrantRevoked,
    MissingScope,
    NotFound,
    RateLimited,
    StravaError,
    StravaRequestError,
    Transient,
)

__all__ = [
    "AccessTokenInvalid",
    "AppCredentialsRejected",
    "BadAuthorizationCode",
    "GrantRevoked",
    "MissingScope",
    "NotFound",
    "RateLimited",
    "StravaClient",
    "StravaError",
    "StravaHooks",
    "StravaRequestError",
    "TokenGrant",
    "Transient",
]
