"""Alert incidents are the core's business (service.core.incidents.IncidentAlerts): the poster behind
them, Slack in production, only posts and says whether it could. Here a poster without Slack."""

from __future__ import annotations

from service.core.incidents import IncidentAlerts


class Poster:
    def __init__(self) -> None:
        self.posts: list[tuple[str, str]] = []
        self.working = True

    async def post_alert(self, kind: str, message: str) -> bool:
        self.posts.append(("alert", kind))
        return self.working

    async def post_resolved(self, kind: str) -> bool:
        self.posts.append(("resolved", kind))
        return self.working


async def test_once_per_incident_whatever_posts_it(runtime) -> None:
    poster = Poster()
    alerts = IncidentAlerts(runtime, poster)
    for _ in range(3):
        await alerts.alert("budget_high", "Strava API budget at 95%")
    await alerts.resolve("budget_high")
    await alerts.resolve("budget_high")
    assert poster.posts == [("alert", "budget_high"), ("resolved", "budget_high")]
    assert await alerts.open_incidents() == []


async def test_a_post_that_fails_keeps_the_incident_state_right(runtime) -> None:
    poster = Poster()
    alerts = IncidentAlerts(runtime, poster)
    poster.working = False
    await alerts.alert("reauth_spike", "many re-authorizations")
    assert await alerts.open_incidents() == []  # not posted: the next occurrence posts again
    poster.working = True
    await alerts.alert("reauth_spike", "many re-authorizations")
    assert await alerts.open_incidents() == ["reauth_spike"]
    poster.working = False
    await alerts.resolve("reauth_spike")
    assert await alerts.open_incidents() == ["reauth_spike"]  # the channel was not told: resolve again
    poster.working = True
    await alerts.resolve("reauth_spike")
    assert await alerts.open_incidents() == []
    assert poster.posts.count(("alert", "reauth_spike")) == 2 and poster.posts.count(("resolved", "reauth_spike")) == 2
