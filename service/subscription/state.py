"""What we remember about the push subscription, in `app_state`.

Ours is the id Strava lists for our app (one subscription per application), stored after every
successful registration or look-up. The app-wide time of the last event heard (for diagnosis:
"others are heard, this athlete is silent") is simply the newest stored event.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from service.db.app_state import get_value, set_value
from service.db.models import WebhookEvent
from troubleshooting.vocabulary import JobKind

# What became of a stored webhook event (webhook_events.state).
NEW, PROCESSED, IGNORED, FAILED = "new", "processed", "ignored", "failed"

# The job that processes one stored event, and its dedupe key (erasure finds the job by it).
JOB_KIND = JobKind.WEBHOOK_EVENT
EVENT_JOB_KEY_PREFIX = "event:"


def event_job_key(event_id: int) -> str:
    """The dedupe key of the one job that processes stored event `event_id`."""
    return f"{EVENT_JOB_KEY_PREFIX}{event_id}"


SUBSCRIPTION_ID = "webhook.subscription_id"
# When Strava last told us the app has no subscription (so forged events do not each cause a look-up).
NO_SUBSCRIPTION_SEEN_AT = "webhook.no_subscription_seen_at"


async def our_subscription_id(session: AsyncSession) -> int | None:
    value = await get_value(session, SUBSCRIPTION_ID)
    return int(value) if value and value.isdigit() else None


async def strava_listed_none(session: AsyncSession) -> bool:
    """Whether the last look at Strava (registration, status, or an event's check) found no
    subscription at all for the app (then no event reaches us)."""
    return await get_value(session, SUBSCRIPTION_ID) == ""


async def remember_subscription(session: AsyncSession, subscription_id: int | None, now: datetime) -> None:
    await set_value(session, SUBSCRIPTION_ID, "" if subscription_id is None else str(subscription_id), now)
    if subscription_id is None:
        await set_value(session, NO_SUBSCRIPTION_SEEN_AT, now.isoformat(), now)


async def no_subscription_seen_at(session: AsyncSession) -> datetime | None:
    value = await get_value(session, NO_SUBSCRIPTION_SEEN_AT)
    return datetime.fromisoformat(value) if value else None


async def last_event_at(session: AsyncSession) -> datetime | None:
    """When the last event from Strava was stored (the newest row; its id is the primary key)."""
    return (await session.execute(select(WebhookEvent.received_at).order_by(WebhookEvent.id.desc()).limit(1))
            ).scalar_one_or_none()
