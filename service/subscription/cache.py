"""What this runtime believes about the app's push subscription: one cache, on the runtime.

Every reader goes through `subscription_cache(rt)` (one `SubscriptionCache` per runtime, made on
first use by `Runtime.part`): the webhook intake (is an event's subscription ours?), the event
processing (confirm it, looking our id up at Strava when none is stored) and the desk's diagnosis
(the live look at Strava). It lives as long as the runtime and holds two things, each for a fixed
time on the injected clock:

- our subscription id as stored in `app_state`: `ID_TTL_S` (1 s), so another process's
  registration (a `fitglue webhook register`, another replica) is seen within a second while a
  burst of events does not read it once each;
- the live look at Strava's push_subscriptions: `LOOK_TTL_S` (60 s), a failed look
  `LOOK_FAILURE_TTL_S` (10 s), so a subscription lost at Strava shows up promptly without one
  Strava call per diagnosis.

`invalidate()` drops both. Registration and repair (`service.subscription.registration`) call it
after storing what Strava listed, so every reader of this runtime sees the new id at once; a read
that was under way then does not put the old value back. Nothing here holds a secret: the client
secret travels only in the Strava call's query string, and errors are scrubbed.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta

from service.core.redact import scrub_text
from service.core.runtime import Runtime
from service.strava import StravaError
from service.subscription.state import no_subscription_seen_at, our_subscription_id, remember_subscription

ID_TTL_S = 1.0
LOOK_TTL_S = 60.0
LOOK_FAILURE_TTL_S = 10.0
LOOK_TIMEOUT_S = 5.0
# After Strava listed no subscription, how long forged events go without another look-up (seconds).
NO_SUBSCRIPTION_RECHECK_S = 300


@dataclass(frozen=True)
class SubscriptionLook:
    """What one live call to Strava's push_subscriptions said (or why it could not be made)."""

    at: datetime
    checked: bool
    exists: bool | None
    callback_url: str | None
    error: str | None
    configured: bool = True


@dataclass(frozen=True)
class _KnownId:
    at: datetime
    id: int | None
    asked_strava: bool  # None from Strava's list (or its recent "none") rather than from the table alone


def _younger(at: datetime, now: datetime, seconds: float) -> bool:
    """Whether `at` lies less than `seconds` before `now` (a clock set back counts as expired)."""
    return timedelta(0) <= now - at < timedelta(seconds=seconds)


class SubscriptionCache:
    """The runtime's one view of the push subscription (see the module docstring for lifetimes)."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self._id: _KnownId | None = None
        self._look: SubscriptionLook | None = None
        self._look_lock = asyncio.Lock()
        self._generation = 0  # bumped by invalidate(): a read started before it is not kept

    def belongs_to(self, rt: Runtime) -> bool:
        return self.rt is rt

    def invalidate(self) -> None:
        """Forget the id and the look (call after the subscription changed)."""
        self._generation += 1
        self._id = None
        self._look = None

    # ---- our subscription id -------------------------------------------------------------------

    def known_id(self) -> tuple[bool, int | None]:
        """(True, our id or None) when the stored id was read within ID_TTL_S, without awaiting
        anything (the intake asks on every event); (False, None) when `our_id()` must read it."""
        known = self._id
        if known is not None and _younger(known.at, self.rt.clock.now(), ID_TTL_S):
            return True, known.id
        return False, None

    async def our_id(self, *, look_up: bool = False, fresh: bool = False) -> int | None:
        """Our subscription id, or None when none is known.

        Without `look_up`, only what is stored (no Strava call: the intake answers within
        milliseconds). With it, a missing id is looked up at Strava (an uncounted app-level call),
        at most once per NO_SUBSCRIPTION_RECHECK_S while Strava lists none. `fresh` skips the cache
        (an event naming another id: it may just have been re-registered elsewhere).
        """
        known, now = self._id, self.rt.clock.now()
        if (not fresh and known is not None and _younger(known.at, now, ID_TTL_S)
                and (known.id is not None or known.asked_strava or not look_up)):
            return known.id
        generation = self._generation
        found, asked = await self._read(look_up)
        if generation == self._generation:
            self._id = _KnownId(now, found, asked)
        return found

    async def _read(self, look_up: bool) -> tuple[int | None, bool]:
        rt = self.rt
        async with rt.sessions() as session:
            known = await our_subscription_id(session)
            checked = await no_subscription_seen_at(session) if known is None and look_up else None
        if known is not None or not look_up:
            return known, False
        if checked is not None and _younger(checked, rt.clock.now(), NO_SUBSCRIPTION_RECHECK_S):
            return None, True
        subscriptions = await rt.require_strava().list_subscriptions(interactive=False)
        found = int(subscriptions[0]["id"]) if subscriptions else None
        async with rt.write() as session:
            await remember_subscription(session, found, rt.clock.now())
        return found, True

    # ---- the live look at Strava ---------------------------------------------------------------

    def _fresh_look(self, now: datetime) -> SubscriptionLook | None:
        look = self._look
        if look is None:
            return None
        return look if _younger(look.at, now, LOOK_TTL_S if look.checked else LOOK_FAILURE_TTL_S) else None

    async def look(self) -> SubscriptionLook:
        """The live look at Strava's push_subscriptions; concurrent callers share one call. Never raises
        for Strava: a failed look says why (`error`)."""
        rt = self.rt
        if rt.strava is None:
            return SubscriptionLook(rt.clock.now(), False, None, None, "Strava is not configured", configured=False)
        cached = self._fresh_look(rt.clock.now())
        if cached is not None:
            return cached
        async with self._look_lock:
            cached = self._fresh_look(rt.clock.now())
            if cached is not None:
                return cached
            generation = self._generation
            look = await self._call()
            if generation == self._generation:
                self._look = look
            return look

    async def _call(self) -> SubscriptionLook:
        rt = self.rt
        assert rt.strava is not None
        expected = rt.settings.webhook_callback_url
        try:
            async with asyncio.timeout(LOOK_TIMEOUT_S):
                subscriptions = await rt.strava.list_subscriptions(interactive=True)
        except TimeoutError:
            return SubscriptionLook(rt.clock.now(), False, None, None,
                                    f"Strava did not answer the subscription check within {LOOK_TIMEOUT_S:g} s")
        except StravaError as exc:
            return SubscriptionLook(rt.clock.now(), False, None, None, scrub_text(exc.summary))
        callbacks = [str(s.get("callback_url") or "") for s in subscriptions if isinstance(s, dict)]
        if not callbacks:
            return SubscriptionLook(rt.clock.now(), True, False, None, None)
        # Strava allows one subscription per app; if there were several, ours is the one that matters.
        callback = expected if expected in callbacks else callbacks[0]
        return SubscriptionLook(rt.clock.now(), True, True, callback, None)


def subscription_cache(rt: Runtime) -> SubscriptionCache:
    """The runtime's one subscription cache, shared by the intake, the processing and every desk."""
    return rt.part(SubscriptionCache)
