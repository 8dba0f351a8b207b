"""App Home and alerts to FITGLUE_ALERT_CHANNEL."""

from __future__ import annotations

from sqlalchemy import select, update

from bot.alerts import SlackAlerts
from service.background.alert_checks import check_alerts, evaluate
from service.core.incidents import IncidentAlerts
from service.db.models import StravaConnection
from tests.bot.conftest import AGENT, ALERT_CHANNEL, OUTSIDER, Signed, connected_user
from tests.bot.helpers import assert_valid_blocks
from troubleshooting.vocabulary import ConnectionStatus


async def test_home_tab_shows_the_dashboard(signed: Signed, service, bot_runtime, slack) -> None:
    await connected_user(service, bot_runtime)
    await connected_user(service, bot_runtime, "bob@example.com")
    async with bot_runtime.sessions() as session, session.begin():
        await session.execute(update(StravaConnection).where(StravaConnection.id == 2).values(
            status=ConnectionStatus.NEEDS_REAUTH, status_changed_at=bot_runtime.clock.now()))
    await signed.command("link carol@example.com")  # an agent action for the list
    await slack.wait_for_responses(1)
    response, _ = await signed.event({"type": "app_home_opened", "user": AGENT, "tab": "home",
                                      "channel": "D0HOME"})
    assert response.status == 200
    publish = (await slack.wait_for_call("views.publish"))[0]
    assert publish.params["user_id"] == AGENT
    view = publish.params["view"]
    view = view if isinstance(view, dict) else __import__("json").loads(view)
    assert view["type"] == "home"
    assert_valid_blocks({"text": "home", "blocks": view["blocks"]}, limit=100)
    text = str(view["blocks"])
    assert "bob@example.com" in text and "Need to re-authorize" in text
    assert "issue_connect_link" in text and "carol@example.com" in text
    assert "All calls · 15 min" in text and "Reads · day" in text
    assert "Push subscription" in text


async def test_home_tab_refuses_outsiders(signed: Signed, slack) -> None:
    await signed.event({"type": "app_home_opened", "user": OUTSIDER, "tab": "home", "channel": "D0HOME"})
    publish = (await slack.wait_for_call("views.publish"))[0]
    assert OUTSIDER in str(publish.params["view"]) and "FITGLUE_SUPPORT_SLACK_IDS" in str(publish.params["view"])


async def test_alert_once_per_incident_until_resolved(service, bot_runtime, slack) -> None:
    sink = bot_runtime.alerts
    assert isinstance(sink, IncidentAlerts) and isinstance(sink.poster, SlackAlerts)
    for _ in range(3):
        await sink.alert("app_credentials_rejected", "Strava rejected FitGlue's client id/secret")
    posts = slack.called("chat.postMessage")
    assert len(posts) == 1 and posts[0].params["channel"] == ALERT_CHANNEL
    assert "client id/secret" in posts[0].params["text"]
    assert_valid_blocks(posts[0].params)
    assert await sink.open_incidents() == ["app_credentials_rejected"]
    await sink.resolve("app_credentials_rejected")
    await sink.resolve("app_credentials_rejected")
    assert len(slack.called("chat.postMessage")) == 2 and "resolved" in slack.calls[-1].params["text"]
    await sink.alert("app_credentials_rejected", "again")
    assert len(slack.called("chat.postMessage")) == 3


async def test_unposted_alert_is_tried_again(service, bot_runtime, slack) -> None:
    slack.failing["chat.postMessage"] = "not_in_channel"
    await bot_runtime.alerts.alert("budget_high", "x")
    assert await bot_runtime.alerts.open_incidents() == []  # type: ignore[attr-defined]
    del slack.failing["chat.postMessage"]
    await bot_runtime.alerts.alert("budget_high", "x")
    assert await bot_runtime.alerts.open_incidents() == ["budget_high"]  # type: ignore[attr-defined]


async def test_periodic_check_raises_and_resolves_budget_and_reauth_spike(service, bot_runtime, slack,
                                                                          clock) -> None:
    assert bot_runtime.ledger is not None
    await bot_runtime.ledger.after_response("GET", "/athlete", 200, {
        "X-RateLimit-Limit": "200,2000", "X-RateLimit-Usage": "185,700",
        "X-ReadRateLimit-Limit": "100,1000", "X-ReadRateLimit-Usage": "20,300"})
    for n in range(5):
        await connected_user(service, bot_runtime, f"user{n}@example.com")
    async with bot_runtime.sessions() as session, session.begin():
        await session.execute(update(StravaConnection).values(status=ConnectionStatus.NEEDS_REAUTH,
                                                              status_changed_at=clock.now()))
    found = await evaluate(bot_runtime)
    assert found["budget_high"] and "92%" in found["budget_high"]
    assert found["reauth_spike"] and found["reauth_spike"].startswith("5 Strava connections")
    await check_alerts(bot_runtime)
    await check_alerts(bot_runtime)
    texts = [c.params["text"] for c in slack.called("chat.postMessage")]
    assert len([t for t in texts if "budget high" in t]) == 1
    assert len([t for t in texts if "reauth spike" in t]) == 1
    # The window resets and the hour passes: both incidents close, once.
    clock.advance(hours=2)
    await check_alerts(bot_runtime)
    await check_alerts(bot_runtime)
    texts = [c.params["text"] for c in slack.called("chat.postMessage")]
    assert len([t for t in texts if t.startswith("FitGlue alert resolved")]) == 2
    async with bot_runtime.sessions() as session:
        assert (await session.execute(select(StravaConnection.status))).scalars().first() == ConnectionStatus.NEEDS_REAUTH
