"""The daily digest in FITGLUE_ALERT_CHANNEL, driven by the injected clock (no sleeping)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from service.app.bootstrap import open_runtime
from service.background.digest import digest_check
from service.db.models import RateLimitState
from tests.bot.conftest import ALERT_CHANNEL
from tests.bot.helpers import assert_valid_blocks
from tests.integration.test_affected import _set
from troubleshooting.vocabulary import ConnectionStatus


class Recorder:
    """Another replica's courier: records what it would post."""

    def __init__(self) -> None:
        self.posted: list[dict[str, Any]] = []

    async def run_bulk_links(self, run_id: int) -> None:
        raise AssertionError("not used here")

    async def post_digest(self, channel: str, digest: dict[str, Any]) -> None:
        self.posted.append(digest)


def digests(slack: Any) -> list[Any]:
    return [c for c in slack.called("chat.postMessage") if c.params["channel"] == ALERT_CHANNEL]


async def test_the_digest_posts_once_a_day_at_its_hour_across_replicas(service, bot_runtime, slack, clock) -> None:
    rt = bot_runtime
    rt.settings = rt.settings.replaced(digest_hour_utc=15)
    await _set(rt, "gone@example.com", status=ConnectionStatus.NEEDS_REAUTH, status_changed_at=clock.now(),
               status_reason="Strava no longer accepts the refresh token")
    await _set(rt, "old@example.com", status=ConnectionStatus.REVOKED, status_changed_at=clock.now() - timedelta(days=3))
    async with rt.write() as session:
        session.add(RateLimitState(budget="overall", limit_15min=200, limit_daily=2000, usage_15min=170,
                                   usage_daily=300, observed_at=clock.now()))
    assert await digest_check(rt) is False  # 14:03: before the hour
    assert digests(slack) == []

    clock.advance(hours=1)  # 15:03
    other = await open_runtime(rt.settings, clock)
    other.courier = Recorder()
    try:
        assert await digest_check(rt) is True
        assert await digest_check(other) is False and other.courier.posted == []  # a replica: already done
        assert await digest_check(rt) is False
    finally:
        await other.close()
    [posted] = digests(slack)
    message = {"text": posted.params["text"], "blocks": posted.params["blocks"]}
    assert_valid_blocks(message)
    text = str(message)
    assert "1 needs_reauth" in posted.params["text"] and "0 revoked" in posted.params["text"]  # revoked 3 days ago
    assert "/fitglue affected needs_reauth" in text and "Strava no longer accepts the refresh token" in text
    assert "overall 15min 85%" in text  # the peak sampled at 14:03

    clock.advance(days=1)
    assert await digest_check(rt) is True
    assert len(digests(slack)) == 2


async def test_a_failed_post_is_tried_again_and_no_channel_means_no_digest(service, bot_runtime, slack,
                                                                          clock) -> None:
    rt = bot_runtime
    rt.settings = rt.settings.replaced(digest_hour_utc=14)
    slack.failing["chat.postMessage"] = "internal_error"
    assert await digest_check(rt) is False
    assert len(digests(slack)) == 1  # tried, refused
    del slack.failing["chat.postMessage"]
    clock.advance(minutes=5)
    assert await digest_check(rt) is True  # the failed day was given back
    assert len(digests(slack)) == 2

    clock.advance(days=1)
    rt.settings = rt.settings.replaced(alert_channel=None)
    assert await digest_check(rt) is False
    assert len(digests(slack)) == 2
