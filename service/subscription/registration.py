"""The app's one push subscription: look at it, repair it, make sure it exists after a Connect.

Repair (reference §2.2–2.3): check that our own callback answers Strava's validation GET, list,
delete a subscription whose callback URL is not ours, create one when none matches (Strava's 400
"already exists" means someone else just did: list again). Nothing is deleted while our callback
cannot answer, since no replacement could be created then. Every attempt is recorded in
`webhook_registrations` with its outcome and Strava's error.
"""

from __future__ import annotations

import json
import logging
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import aiohttp
from sqlalchemy import select

from service.core.http_answers import read_at_most
from service.core.inputs import BadInput, parse_json
from service.core.runtime import Runtime
from service.core.settings import ConfigError
from service.db.models import WebhookRegistration
from service.queue.catch_up import queue_catch_up
from service.strava import StravaError, StravaRequestError
from service.subscription.cache import subscription_cache
from service.subscription.state import last_event_at, remember_subscription

log = logging.getLogger(__name__)

UNCHANGED, REPAIRED, FAILED = "unchanged", "repaired", "failed"
PROBE_TIMEOUT_S = 5.0
PROBE_ANSWER_BYTES = 4096  # {"hub.challenge": "..."}: anything longer is not the echo


@dataclass(frozen=True)
class Subscription:
    id: int
    callback_url: str


@dataclass(frozen=True)
class RegistrationRecord:
    at: datetime
    outcome: str
    error: str | None


@dataclass(frozen=True)
class WebhookStatus:
    subscription: Subscription | None
    callback_matches: bool
    last_event_at: datetime | None
    last_registration: RegistrationRecord | None


@dataclass(frozen=True)
class RegistrationReport:
    status: WebhookStatus
    outcome: str
    error: str | None
    steps: list[dict[str, Any]] = field(default_factory=list)
    catch_up_queued: int = 0

    @property
    def ok(self) -> bool:
        return self.outcome != FAILED


def _parse(item: dict[str, Any]) -> Subscription | None:
    try:
        return Subscription(int(item["id"]), str(item.get("callback_url") or ""))
    except (KeyError, TypeError, ValueError):
        return None


async def _list(rt: Runtime) -> list[Subscription]:
    return [s for s in (_parse(i) for i in await rt.require_strava().list_subscriptions()) if s is not None]


async def _last_registration(rt: Runtime) -> RegistrationRecord | None:
    async with rt.sessions() as session:
        row = (await session.execute(select(WebhookRegistration).order_by(
            WebhookRegistration.at.desc(), WebhookRegistration.id.desc()).limit(1))).scalar_one_or_none()
    return RegistrationRecord(row.at, row.outcome, row.error) if row else None


async def _status(rt: Runtime, subscriptions: list[Subscription], remember: bool = True) -> WebhookStatus:
    wanted = rt.settings.webhook_callback_url
    current = next((s for s in subscriptions if s.callback_url == wanted), subscriptions[0] if subscriptions else None)
    async with rt.write() as session:
        if remember:
            # One subscription per app: whatever Strava lists is ours, so its events are accepted.
            await remember_subscription(session, current.id if current else None, rt.clock.now())
        last = await last_event_at(session)
    if remember:  # after the commit: every reader of this runtime sees the new id from now on
        subscription_cache(rt).invalidate()
    return WebhookStatus(current, current is not None and current.callback_url == wanted, last,
                         await _last_registration(rt))


async def webhook_status(rt: Runtime) -> WebhookStatus:
    """The live subscription at Strava (one app-level call) and what we know locally. Raises StravaError."""
    return await _status(rt, await _list(rt))


def _verify_token(rt: Runtime) -> str:
    rt.settings.require("STRAVA_WEBHOOK_VERIFY_TOKEN")
    assert rt.settings.strava_webhook_verify_token is not None
    return rt.settings.strava_webhook_verify_token.get_secret_value()


async def probe_callback(rt: Runtime) -> tuple[bool, str]:
    """Ask our own public callback the question Strava will ask; (answers correctly, what happened)."""
    challenge = f"probe-{secrets.token_hex(8)}"
    params = {"hub.mode": "subscribe", "hub.verify_token": _verify_token(rt), "hub.challenge": challenge}
    url = rt.settings.webhook_callback_url
    try:
        async with rt.http.get(url, params=params, allow_redirects=False,
                               timeout=aiohttp.ClientTimeout(total=PROBE_TIMEOUT_S)) as response:
            status = response.status
            raw = await read_at_most(response, PROBE_ANSWER_BYTES) or b""  # the answer is a short JSON object
    except (aiohttp.ClientError, TimeoutError) as exc:
        return False, f"{url} could not be reached ({type(exc).__name__})"
    if status != 200:
        return False, f"{url} answered HTTP {status} to the validation request"
    try:
        body = parse_json(raw)
    except BadInput:
        body = None
    if not isinstance(body, dict) or body.get("hub.challenge") != challenge:
        return False, f"{url} answered 200 but did not echo hub.challenge as JSON"
    return True, f"{url} answers the validation request"


async def reregister(rt: Runtime, actor: str, *, always_probe: bool = True,
                     catch_up_when_unchanged: bool = True) -> RegistrationReport:
    """Make Strava's subscription point at our callback. Never raises for Strava failures: the
    report's outcome is `failed` and its error says why."""
    rt.require_strava()
    wanted = rt.settings.webhook_callback_url
    steps: list[dict[str, Any]] = []
    probed = False

    def step(name: str, ok: bool, detail: str) -> None:
        steps.append({"step": name, "ok": ok, "description": detail})

    async def probe() -> bool:
        nonlocal probed
        probed = True
        ok, detail = await probe_callback(rt)
        step("check_callback", ok, detail)
        return ok

    outcome, error, subscriptions = UNCHANGED, None, []
    try:
        if always_probe and not await probe():
            raise _Stop(steps[-1]["description"] + "; nothing was changed at Strava")
        subscriptions = await _list(rt)
        step("list", True, f"Strava lists {len(subscriptions)} subscription(s)"
             + "".join(f"; {s.id} -> {s.callback_url}" for s in subscriptions))
        matching = [s for s in subscriptions if s.callback_url == wanted]
        stale = [s for s in subscriptions if s.callback_url != wanted]
        if (stale or not matching) and not probed and not await probe():
            raise _Stop(steps[-1]["description"] + "; nothing was changed at Strava")
        for sub in stale:
            await rt.require_strava().delete_subscription(sub.id)
            step("delete", True, f"deleted subscription {sub.id} pointing at {sub.callback_url}")
            outcome = REPAIRED
        subscriptions = [s for s in subscriptions if s.callback_url == wanted]
        if not matching:
            subscriptions = await _create(rt, wanted, step)
            outcome = REPAIRED
    except _Stop as stop:
        outcome, error = FAILED, str(stop)
    except StravaError as exc:
        outcome, error = FAILED, exc.summary
        step("strava", False, exc.summary)

    subscriptions, seen = await _record_attempt(rt, actor, outcome, error, steps, subscriptions)
    status = await _status(rt, subscriptions, remember=seen)
    queued = 0
    if outcome == REPAIRED or (outcome == UNCHANGED and catch_up_when_unchanged):
        queued = await queue_catch_up(rt)
        if queued:
            step("catch_up", True, f"queued catch-up of missed activities for {queued} athlete(s)")
    log.info("webhook registration by %s: %s%s", actor, outcome, f" ({error})" if error else "")
    return RegistrationReport(status, outcome, error, steps, queued)


class _Stop(Exception):
    pass


async def _record_attempt(rt: Runtime, actor: str, outcome: str, error: str | None, steps: list[dict[str, Any]],
                          subscriptions: list[Subscription]) -> tuple[list[Subscription], bool]:
    """Store the attempt in `webhook_registrations`: (the subscriptions Strava lists now, whether
    that list was seen). After a failure Strava's current view is shown if it can still be had."""
    seen = True
    if outcome == FAILED:
        try:
            subscriptions = await _list(rt)
        except StravaError:
            seen = False  # keep the id we know: Strava being unreachable says nothing about it
    current = subscriptions[0] if subscriptions else None
    async with rt.write() as session:
        session.add(WebhookRegistration(at=rt.clock.now(), actor=actor, outcome=outcome, error=error,
                                        steps=json.dumps(steps), subscription_id=current.id if current else None))
    return subscriptions, seen


async def _create(rt: Runtime, wanted: str, step: Any) -> list[Subscription]:
    strava = rt.require_strava()
    try:
        new_id = await strava.create_subscription(wanted, _verify_token(rt))
    except StravaRequestError as exc:
        if not any(f.code == "already exists" for f in exc.faults):
            raise
        # Created meanwhile (another replica, another operator): take it if it is ours.
        again = await _list(rt)
        matching = [s for s in again if s.callback_url == wanted]
        if not matching:
            raise _Stop("Strava says a subscription already exists but lists none for our callback: "
                        f"{exc.summary}") from None
        step("create", True, f"subscription {matching[0].id} already existed for {wanted}")
        return matching
    step("create", True, f"created subscription {new_id} for {wanted}")
    return [Subscription(new_id, wanted)]


class EnsureAfterConnect:
    """The `rt.on_connected` hook: make sure the subscription exists. It runs in the background after
    the result page went out; its outcome is recorded like any registration and never fails the Connect.
    One per runtime (`ensure_after_connect`), so adding it twice is easy to avoid."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    async def __call__(self, athlete_id: int | None) -> None:
        try:
            await reregister(self.rt, "connect", always_probe=False, catch_up_when_unchanged=False)
        except ConfigError as exc:
            log.warning("could not check the webhook subscription after a Connect: %s", exc)


def ensure_after_connect(rt: Runtime) -> EnsureAfterConnect:
    """The runtime's one "ensure the push subscription after a Connect" hook."""
    return rt.part(EnsureAfterConnect)
