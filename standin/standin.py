"""StravaStandin: the stand-in's state plus the knobs tests turn."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from service.core.clock import Clock, SystemClock, to_epoch
from service.core.crypto import constant_time_equals
from standin import persist
from standin.config import CallRecord, StandinConfig
from standin.delivery import Outbox
from standin.event_receiver import EventReceiver
from standin.failures import FailureInjector
from standin.faults import APPLICATION_INVALID, CLIENT_ID_INVALID
from standin.ratelimits import RateLimits
from standin.state import SandboxState

log = logging.getLogger(__name__)

FIRST_SUBSCRIPTION_ID = 131300


@dataclass
class Delivery:
    """One event POSTed to the subscription callback, and the status it got (0: no answer)."""

    event: dict[str, Any]
    callback_url: str
    status: int
    at: datetime


class StravaStandin:
    def __init__(self, config: StandinConfig | None = None, clock: Clock | None = None) -> None:
        self.config = config or StandinConfig()
        self.clock: Clock = clock or SystemClock()
        self.state = SandboxState()
        self.limits = RateLimits(lambda: self.config.overall_limits, lambda: self.config.read_limits)
        self.failures = FailureInjector()
        self.calls: list[CallRecord] = []
        self.deliveries: list[Delivery] = []
        self.subscription: dict[str, Any] | None = None
        self.base_url: str | None = None  # set by start_standin
        self.client_secret_rejected = False
        self._outbox = Outbox()
        self._subscription_lock = asyncio.Lock()
        self._next_subscription_id = FIRST_SUBSCRIPTION_ID
        self._background: set[asyncio.Task[int]] = set()
        self._stopping = asyncio.Event()
        self.outage: Any = None  # a standin.controls.Outage while Strava is "down"
        # Called with the new capacity when the control page changes it (the sandbox follows it).
        self.on_capacity_change: list[Callable[[int | None], None]] = []
        # FitGlue's other services, stood in (`fitglue serve --sandbox` points FITGLUE_EVENTS_URL here).
        self.events = EventReceiver()

    # observation ----------------------------------------------------------------------------------
    @property
    def issued_tokens(self) -> set[str]:
        """Every access and refresh token ever issued."""
        return self.state.issued_tokens

    def count_calls(self, method: str, path_prefix: str) -> int:
        method = method.upper()
        return sum(
            1
            for c in self.calls
            if c.method == method
            and (c.path.startswith(path_prefix) or canonical_path(c.path).startswith(path_prefix))
        )

    # athletes and activities ----------------------------------------------------------------------
    def add_athlete(
        self, athlete_id: int | None = None, firstname: str = "Sandy", lastname: str = "Runner"
    ) -> int:
        return self.state.add_athlete(self.clock.now(), athlete_id, firstname, lastname).id

    def add_activity(
        self,
        athlete_id: int,
        name: str = "Morning Run",
        sport_type: str = "Run",
        start_date: datetime | None = None,
        private: bool = False,
    ) -> int:
        start = start_date or self.clock.now()
        return self.state.add_activity(athlete_id, name, sport_type, start, private).id

    async def create_activity_and_notify(self, athlete_id: int, **kw: Any) -> int:
        """Add an activity and push its "create" event, when Strava would send one to this app:
        a subscription exists, the athlete is connected with an activity read scope, and a private
        (Only You) activity only with activity:read_all."""
        activity_id = self.add_activity(athlete_id, **kw)
        scopes = self.state.grants.get(athlete_id)
        if self.subscription is None or scopes is None:
            return activity_id
        private = self.state.activities[activity_id].private
        visible = "activity:read_all" in scopes or ("activity:read" in scopes and not private)
        if visible:
            await self.push_event(self.event("create", "activity", activity_id, athlete_id, {}))
        return activity_id

    # authorization --------------------------------------------------------------------------------
    def revoke_athlete(self, athlete_id: int, send_event: bool = True) -> None:
        """The athlete presses "Revoke Access" in their Strava settings. ``send_event`` False: the
        deauthorization event is lost on the way (the app learns of it only at its next refresh)."""
        if athlete_id not in self.state.athletes:
            raise KeyError(f"no athlete {athlete_id}")
        was_connected = self.state.revoke(athlete_id)
        if was_connected and send_event and self.subscription is not None:
            event = self.event("update", "athlete", athlete_id, athlete_id, {"authorized": "false"})
            self._in_background(self.push_event(event))

    def reject_client_secret(self, rejected: bool = True) -> None:
        self.client_secret_rejected = rejected

    def fail_next(
        self,
        path_prefix: str,
        status: int,
        body: dict[str, Any] | None = None,
        count: int = 1,
        timeout: bool = False,
    ) -> None:
        self.failures.add(path_prefix, status, body, count, timeout)

    def check_client(
        self, client_id: str | None, client_secret: str | None
    ) -> tuple[int, dict[str, Any]] | None:
        """None when the app's credentials are good, else the (status, body) Strava answers."""
        if client_id != self.config.client_id:
            return 400, CLIENT_ID_INVALID
        if self.client_secret_rejected or not constant_time_equals(
            client_secret or "", self.config.client_secret
        ):
            return 401, APPLICATION_INVALID
        return None

    # webhook events -------------------------------------------------------------------------------
    def event(
        self, aspect_type: str, object_type: str, object_id: int, owner_id: int, updates: dict[str, str]
    ) -> dict[str, Any]:
        """An event body as Strava POSTs it (``updates`` values are strings)."""
        return {
            "aspect_type": aspect_type,
            "event_time": to_epoch(self.clock.now()),
            "object_id": object_id,
            "object_type": object_type,
            "owner_id": owner_id,
            "subscription_id": self.subscription["id"] if self.subscription else None,
            "updates": updates,
        }

    async def push_event(self, event: dict[str, Any]) -> int:
        """POST ``event`` to the subscription callback; the HTTP status, or 0 when no answer came in
        time. ``subscription_id`` and ``event_time`` are filled in when absent."""
        if self.subscription is None:
            raise LookupError("no push subscription: nowhere to send the event")
        callback_url = self.subscription["callback_url"]
        body = dict(event)
        body.setdefault("subscription_id", self.subscription["id"])
        body.setdefault("event_time", to_epoch(self.clock.now()))
        status = await self._outbox.post_event(callback_url, body)
        self.deliveries.append(Delivery(body, callback_url, status, self.clock.now()))
        return status

    async def wait_for_deliveries(self) -> None:
        """Wait for events pushed in the background (by revoke_athlete) to be delivered."""
        while self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)

    # subscriptions --------------------------------------------------------------------------------
    async def create_subscription(self, callback_url: str, verify_token: str) -> dict[str, Any] | None:
        """Validate the callback as Strava does; the new subscription, or None when not verifiable.
        Raises FileExistsError when one exists already."""
        async with self._subscription_lock:
            if self.subscription is not None:
                raise FileExistsError("subscription exists")
            challenge = secrets.token_hex(16)
            if not await self._outbox.verify_callback(callback_url, verify_token, challenge):
                return None
            now = self.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")
            self.subscription = {
                "id": self._next_subscription_id,
                "resource_state": 2,
                "application_id": int(self.config.client_id)
                if self.config.client_id.isdigit()
                else self.config.client_id,
                "callback_url": callback_url,
                "created_at": now,
                "updated_at": now,
            }
            self._next_subscription_id += 1
            return self.subscription

    def delete_subscription(self, subscription_id: str) -> bool:
        if self.subscription is None or str(self.subscription["id"]) != subscription_id:
            return False
        self.subscription = None
        return True

    # lifecycle ------------------------------------------------------------------------------------
    def save(self, path: Path) -> None:
        """Write the stand-in's world (athletes, activities, grants, tokens, subscription) to ``path``."""
        persist.save(path, self.state, self.subscription, self._next_subscription_id)

    def restore(self, path: Path) -> bool:
        """Read back what ``save`` wrote; False when there is no such file. ValueError for another file."""
        if not path.exists():
            return False
        self.state, self.subscription, self._next_subscription_id = persist.load_state(path.read_text())
        return True

    def _in_background(self, coro: Any) -> None:
        try:
            task = asyncio.get_running_loop().create_task(coro)
        except RuntimeError:
            coro.close()
            log.warning("no running event loop: the deauthorization event was not sent")
            return
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def stall(self, seconds: float) -> None:
        """Sleep like a hung Strava, but wake when the app shuts down so it can stop promptly."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    def stopping(self) -> None:
        self._stopping.set()

    async def aclose(self) -> None:
        await self.wait_for_deliveries()
        await self._outbox.close()


def canonical_path(path: str) -> str:
    """``/api/v3/oauth/token`` and ``/oauth/token`` are the same endpoint at Strava."""
    if path.startswith("/api/v3/oauth/"):
        return path[len("/api/v3") :]
    return path
