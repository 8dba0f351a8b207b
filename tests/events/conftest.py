"""Outbound events: a local receiver that verifies every signature with `standardwebhooks`, and a
runtime whose FITGLUE_EVENTS_URL points at it."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

import pytest

from service.core.runtime import Runtime
from standin.event_receiver import EventReceiver, start_event_receiver

EVENTS_SECRET = "whsec_" + base64.b64encode(b"outbound-events-test-secret-0123").decode()


@pytest.fixture
async def receiver() -> AsyncIterator[EventReceiver]:
    receiver, runner, url = await start_event_receiver(EVENTS_SECRET)
    receiver.url = url  # type: ignore[attr-defined]
    yield receiver
    await runner.cleanup()


@pytest.fixture
async def events_runtime(runtime: Runtime, receiver: EventReceiver) -> Runtime:
    """The test runtime with outbound events on, sent to `receiver`."""
    runtime.settings = runtime.settings.replaced(events_url=receiver.url,  # type: ignore[attr-defined]
                                                 events_secret=EVENTS_SECRET)
    return runtime
