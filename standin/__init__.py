"""A local stand-in for Strava's OAuth, REST API and push subscriptions.

It imitates Strava's documented behaviour (see the Strava API reference notes) so the Connect flow
can be tried without a Strava app, and so tests can control Strava: add athletes and activities,
revoke access, push events, inject failures, and watch rate limits on an injected clock.
Used by `fitglue serve --sandbox`, the tests and the benchmarks. It imports nothing of the service
but its core (the clock and the request-body reader).
"""

from standin.app import build_standin_app, start_standin
from standin.config import CallRecord, StandinConfig
from standin.keys import STANDIN_KEY
from standin.standin import Delivery, StravaStandin

__all__ = [
    "STANDIN_KEY",
    "CallRecord",
    "Delivery",
    "StandinConfig",
    "StravaStandin",
    "build_standin_app",
    "start_standin",
]
