"""The live look at the app's push subscription at Strava that a diagnosis includes.

One look is shared by every diagnosis of a runtime (``probe_for``) and reused for at most a minute
on the injected clock, so a subscription lost at Strava shows up promptly without one Strava call
per diagnosis. The look holds no secret: the client secret travels only in the call's query string,
and errors are scrubbed.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta

from service.core.redact import scrub_text
from service.core.runtime import Runtime
from service.strava import StravaError


@dataclass(frozen=True)
class SubscriptionLook:
    """What one live call to Strava's push_subscriptions said (or why it could not be made)."""

    at: datetime
    checked: bool
    exists: bool | None
    callback_url: str | None
    error: str | None
    configured: bool = True


class SubscriptionProbe:
    """One live look at the app's push subscription, reused for at most `ttl_s` on the injected clock.

    A failed look is kept for a shorter time, so Strava coming back shows up soon. Concurrent
    diagnoses share one call. Call `forget()` after changing the subscription (re-registration).
    """

    def __init__(self, rt: Runtime, ttl_s: float = 60, failure_ttl_s: float = 10, timeout_s: float = 5) -> None:
        self.rt = rt
        self.ttl = timedelta(seconds=ttl_s)
        self.failure_ttl = timedelta(seconds=failure_ttl_s)
        self.timeout_s = timeout_s
        self._look: SubscriptionLook | None = None
        self._lock = asyncio.Lock()

    def belongs_to(self, rt: Runtime) -> bool:
        return self.rt is rt

    def forget(self) -> None:
        self._look = None

    def _fresh(self, now: datetime) -> SubscriptionLook | None:
        look = self._look
        if look is None:
            return None
        age = now - look.at
        keep = self.ttl if look.checked else self.failure_ttl
        return look if timedelta(0) <= age < keep else None

    async def look(self) -> SubscriptionLook:
        rt = self.rt
        if rt.strava is None:
            return SubscriptionLook(rt.clock.now(), False, None, None, "Strava is not configured", configured=False)
        cached = self._fresh(rt.clock.now())
        if cached is not None:
            return cached
        async with self._lock:
            cached = self._fresh(rt.clock.now())
            if cached is not None:
                return cached
            self._look = await self._call()
            return self._look

    async def _call(self) -> SubscriptionLook:
        rt = self.rt
        assert rt.strava is not None
        expected = rt.settings.webhook_callback_url
        try:
            async with asyncio.timeout(self.timeout_s):
                subscriptions = await rt.strava.list_subscriptions(interactive=True)
        except TimeoutError:
            return SubscriptionLook(rt.clock.now(), False, None, None,
                                    f"Strava did not answer the subscription check within {self.timeout_s:g} s")
        except StravaError as exc:
            return SubscriptionLook(rt.clock.now(), False, None, None, scrub_text(exc.summary))
        callbacks = [str(s.get("callback_url") or "") for s in subscriptions if isinstance(s, dict)]
        if not callbacks:
            return SubscriptionLook(rt.clock.now(), True, False, None, None)
        # Strava allows one subscription per app; if there were several, ours is the one that matters.
        callback = expected if expected in callbacks else callbacks[0]
        return SubscriptionLook(rt.clock.now(), True, True, callback, None)


def probe_for(rt: Runtime) -> SubscriptionProbe:
    """The one probe of a runtime, so every desk (bot, CLI, admin API) shares its cached look."""
    return rt.part(SubscriptionProbe)
