"""Delivering outbound events to FITGLUE_EVENTS_URL: the loop the queue worker runs beside its jobs.

Each round claims up to FITGLUE_EVENTS_BATCH due events under a lease (`service.outbox.deliveries`:
at most one per athlete, so each athlete's events go out in order), POSTs them at once, and settles
the round in one transaction. A 2xx is success; anything else, or no answer within
FITGLUE_EVENTS_TIMEOUT_S, is retried after the next wait of FITGLUE_EVENTS_RETRY_SCHEDULE_S; after
the last one the event is parked as failed, an alert goes out (once per incident: the alert sink
keeps `service.core.incidents`), and the athlete's later events flow again.

Every attempt is signed afresh with the Standard Webhooks reference library (`standardwebhooks`):
headers `webhook-id` (the event's, unchanged across retries), `webhook-timestamp` and
`webhook-signature` (`v1,` + base64 HMAC-SHA256 over `id.timestamp.body`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import aiohttp
from standardwebhooks import Webhook

from service.core.http_answers import read_at_most
from service.core.redact import redact_url
from service.core.runtime import Runtime
from service.core.settings import reveal
from service.core.wind_down import wind_down
from service.outbox.deliveries import Attempt, ClaimedEvent, claim_due, release, settle

log = logging.getLogger(__name__)

ATTEMPTS = "fitglue_outbound_attempts_total"
PARKED_ALERT = "events_parked"
CLAIM_RETRY_S = 1.0


def signed_headers(signer: Webhook, webhook_id: str, body: str) -> dict[str, str]:
    """The Standard Webhooks headers for one attempt at sending `body`.

    The one place in the service that reads the real wall clock instead of the injectable one
    (`service.core.clock`): receivers, the `standardwebhooks` library included, refuse a
    `webhook-timestamp` more than 5 minutes from their own clock, so a test's moved clock (or a
    retry hours later) must never be signed into an attempt.
    """
    sent_at = datetime.fromtimestamp(int(datetime.now(UTC).timestamp()), UTC)
    return {"content-type": "application/json", "webhook-id": webhook_id,
            "webhook-timestamp": str(int(sent_at.timestamp())),
            "webhook-signature": signer.sign(webhook_id, sent_at, body)}


def _failure(exc: BaseException, timeout_s: float) -> str:
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return f"no answer within {timeout_s:g} s"
    return f"could not reach the receiver ({type(exc).__name__}: {str(exc)[:200] or 'no detail'})"


# The receiver's status decides and its body is never used: a short answer is read so the connection
# can carry the next event; a longer one is not waited for (the connection is dropped).
DRAIN_LIMIT_BYTES = 64 * 1024


def _refused(response: aiohttp.ClientResponse) -> str:
    """Why a non-2xx answer is a failed attempt; a redirect says where it leads, so the operator can
    point FITGLUE_EVENTS_URL there."""
    if 300 <= response.status < 400:
        location = redact_url(response.headers.get("Location", "nowhere"))[:200]
        return (f"the receiver answered HTTP {response.status} (a redirect, to {location}; "
                "set FITGLUE_EVENTS_URL to where it leads)")
    return f"the receiver answered HTTP {response.status}"


class OutboundDelivery:
    """Claims, sends and settles outbound events; `run_pending` drives it directly (tests, one-shot)."""

    def __init__(self, rt: Runtime, *, worker_id: str | None = None) -> None:
        self.rt = rt
        self.worker_id = worker_id or f"events-{os.getpid()}-{secrets.token_hex(4)}"
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def enabled(self) -> bool:
        return self.rt.settings.events_enabled

    def _lease(self) -> timedelta:
        # Longer than any attempt can take, so a live worker never loses its claim mid-send.
        settings = self.rt.settings
        return timedelta(seconds=max(settings.job_lease_s, 2 * settings.events_timeout_s))

    async def run_once(self) -> int:
        """One round: claim a batch of due events, send them, settle. How many were attempted."""
        settings = self.rt.settings
        if not self.enabled:
            return 0
        settings.require_events_secret()
        claimed = await claim_due(self.rt.write, self.rt.clock.now(), self.worker_id, settings.events_batch,
                                  self._lease())
        if not claimed:
            return 0
        signer = Webhook(reveal(settings.events_secret) or "")
        try:
            attempts = await asyncio.gather(*(self._send(signer, event) for event in claimed))
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await asyncio.shield(release(self.rt.write, self.worker_id, [e.id for e in claimed]))
            raise
        await self._settle(attempts)
        return len(claimed)

    async def run_pending(self, max_rounds: int = 1000) -> int:
        """Rounds until nothing is due now; how many attempts were made."""
        total = 0
        for _ in range(max_rounds):
            made = await self.run_once()
            if not made:
                break
            total += made
        return total

    async def _send(self, signer: Webhook, event: ClaimedEvent) -> Attempt:
        settings = self.rt.settings
        url = settings.events_url or ""
        timeout = aiohttp.ClientTimeout(total=settings.events_timeout_s)
        try:
            # Redirects are not followed: only the receiver's own 2xx is a delivery (a followed 302
            # turns the POST into a GET whose 200 says nothing about the event).
            async with self.rt.http.post(url, data=event.body.encode(), timeout=timeout, allow_redirects=False,
                                         headers=signed_headers(signer, event.webhook_id, event.body)) as response:
                await read_at_most(response, DRAIN_LIMIT_BYTES)
                if 200 <= response.status < 300:
                    return Attempt(event)
                return Attempt(event, _refused(response))
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return Attempt(event, _failure(exc, settings.events_timeout_s))

    async def _settle(self, attempts: Sequence[Attempt]) -> None:
        rt = self.rt
        parked = await settle(rt.write, self.worker_id, rt.clock.now(), attempts, rt.settings.events_retry_schedule_s)
        delivered = sum(1 for a in attempts if a.error is None)
        rt.metrics.inc(ATTEMPTS, "delivered", delivered)
        rt.metrics.inc(ATTEMPTS, "retry", len(attempts) - delivered - len(parked))
        if parked:
            rt.metrics.inc(ATTEMPTS, "parked", len(parked))
            for event in parked:
                log.info("outbound event %s (%s) parked as failed after its last attempt", event.id, event.type)
            await rt.alerts.alert(PARKED_ALERT, parked_message(len(parked)))

    # ---- as a background loop beside the queue worker ------------------------------------------

    def start(self) -> None:
        if self.enabled:
            self._task = asyncio.ensure_future(self._loop())

    async def stop(self) -> None:
        """Send no new round; let the one in flight finish within FITGLUE_SHUTDOWN_GRACE_S seconds,
        then cut it short (the events it claimed are released). Its sends alone may take
        FITGLUE_EVENTS_TIMEOUT_S (up to 300 s), and a parked alert FITGLUE_SLACK_TIMEOUT_S more."""
        self._stopping.set()
        if self._task is not None:
            await wind_down([self._task], self.rt.settings.shutdown_grace_s, "outbound delivery round")

    async def _loop(self) -> None:
        poll_s = self.rt.settings.events_poll_ms / 1000
        while not self._stopping.is_set():
            try:
                made = await self.run_once()
            except Exception:
                log.warning("could not deliver outbound events this round; trying again shortly", exc_info=True)
                made, poll_s = 0, max(poll_s, CLAIM_RETRY_S)
            if made:
                continue  # each round sends at most one event per athlete: the next ones are due now
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), poll_s)
            poll_s = self.rt.settings.events_poll_ms / 1000


def parked_message(count: int) -> str:
    return (f"{count} event(s) for FitGlue's other services could not be delivered to FITGLUE_EVENTS_URL after "
            "every retry and are parked. Check the receiver, then run `fitglue events retry --failed` "
            "(or press Retry events under a diagnosis).")
