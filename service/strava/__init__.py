"""Strava HTTP client: OAuth calls, REST calls, push subscriptions. Knows nothing of our database."""

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
