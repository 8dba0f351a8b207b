"""Issue 9, kind 4: one truth about permissions.

The result page (and whether it uses the link up), the landing page, the diagnosis (findings and
status reason, text and --json), and the App Home all judge a grant by ``grant_verdict``; for every
grant they must say the same thing.
"""

from __future__ import annotations

import itertools
import json
import re

import pytest
from sqlalchemy import select, update

from bot.render import home_view
from service.app.cli.diagnose_cmd import render_diagnosis
from service.app.factory import build_app
from service.db.models import ConnectLink, OAuthAttempt, StravaConnection, User
from service.desk.support_desk import SupportDesk
from tests.flows import connect, link_path
from troubleshooting.permissions import GrantVerdict, grant_verdict, parse_scopes
from troubleshooting.vocabulary import AttemptOutcome, ConnectionStatus

ALICE = "alice@example.com"
OPTIONAL = ("activity:read_all", "activity:write", "profile:read_all")  # the boxes one can untick


@pytest.fixture
async def client(aiohttp_client, runtime):
    return await aiohttp_client(build_app(runtime, background=False))


def title(html: str) -> str:
    return re.search(r"<h1>(.*?)</h1>", html, re.S).group(1).strip()


def home_text(summary: dict) -> str:
    return json.dumps(home_view(summary, None, None))


# One line on the result page per shortfall need, in the user's words.
NEED_LINES = {"source": "Reading activities was not allowed", "private_activities": "Reading private activities",
              "destination": "Writing activities was not allowed", "profile": "Reading your profile was not allowed"}


def assert_sync_sentence(text: str, verdict: GrantVerdict) -> None:
    """Whether syncing works is said once per grant, and only what the verdict says."""
    text = " ".join(text.split()).lower()
    assert ("syncing itself still works" in text) == (verdict.severity == "warning")
    assert ("syncing does not work until" in text) == (verdict.severity == "error")


def assert_grant_text(html: str, verdict: GrantVerdict) -> None:
    needs = {s.need for s in verdict.shortfalls}
    for need, line in NEED_LINES.items():
        assert (line in html) == (need in needs), line
    assert_sync_sentence(html, verdict)


async def link_used(runtime) -> bool:
    async with runtime.sessions() as session:
        return (await session.execute(select(ConnectLink.used_at))).scalars().first() is not None


async def test_unticking_only_profile_warns_keeps_the_link_and_the_diagnosis_agrees(client, runtime):
    """The issue's example: plain "Connected" and a used-up link, beside a diagnosis warning and a
    status reason claiming every needed permission."""
    desk = SupportDesk(runtime)
    url = (await desk.issue_connect_link(ALICE, "test")).url
    status, html = await connect(client, url, granted=["read", "activity:read_all", "activity:write"])
    assert status == 200 and title(html) == "Connected, with a warning"
    assert "Reading your profile was not allowed" in html and "Try again with all permissions" in html
    assert not await link_used(runtime)
    assert (await client.get(link_path(url))).status == 200  # the same link lets them fix it

    diagnosis = await desk.diagnose(ALICE)
    finding = diagnosis.finding("missing_permissions")
    assert finding is not None and finding.severity == "warning" and "profile:read_all" in finding.detail
    assert diagnosis.facts["status_reason"] == "connected without profile:read_all"
    text = render_diagnosis(diagnosis)
    assert "every needed permission" not in text and "every permission" not in text
    assert json.loads(json.dumps(diagnosis.to_dict()))["facts"]["status_reason"] == "connected without profile:read_all"


async def test_granting_only_read_is_not_called_connected_anywhere(client, runtime):
    """The issue's other case: an ERROR diagnosis, yet the next link's landing page said "already
    connected" and the App Home said nobody needs to act."""
    desk = SupportDesk(runtime)
    status, html = await connect(client, (await desk.issue_connect_link(ALICE, "test")).url, granted=["read"])
    assert status == 200 and title(html) == "Connected, with limits"
    assert (await desk.diagnose(ALICE)).finding("missing_permissions").severity == "error"

    page = await (await client.get(link_path((await desk.issue_connect_link(ALICE, "test")).url))).text()
    assert "already connected" not in page and "Connected, with limits" in page
    assert "activity:read_all, activity:write, profile:read_all" in page

    summary = (await desk.home.summary()).to_dict()
    assert summary["missing_permissions_total"] == 1
    assert summary["missing_permissions"] == [{
        "email": ALICE, "missing": ["activity:read_all", "activity:write", "profile:read_all"], "severity": "error",
        "since": summary["missing_permissions"][0]["since"]}]
    assert ALICE in home_text(summary) and "Missing Strava permissions" in home_text(summary)


@pytest.mark.parametrize("kept", [combo for n in range(4) for combo in itertools.combinations(OPTIONAL, n)])
async def test_every_grant_gets_one_verdict_everywhere(client, runtime, kept):
    """Each combination of boxes left ticked, through the real flow: page, link, attempt, diagnosis,
    landing page and App Home agree with grant_verdict."""
    granted = ["read", *kept]
    verdict = grant_verdict(granted)
    desk = SupportDesk(runtime)
    status, html = await connect(client, (await desk.issue_connect_link(ALICE, "test")).url, granted=granted)
    assert status == 200
    assert title(html) == {"ok": "Connected", "warning": "Connected, with a warning",
                           "error": "Connected, with limits"}[verdict.severity]
    assert await link_used(runtime) == verdict.complete
    # Every line about the grant follows the verdict: one per shortfall, and "syncing still works"
    # only when nothing syncing needs is missing (review: a read-only grant was told it still works).
    assert_grant_text(html, verdict)
    async with runtime.sessions() as session:
        outcome = (await session.execute(select(OAuthAttempt.outcome))).scalar_one()
    assert outcome == (AttemptOutcome.CONNECTED if verdict.complete else AttemptOutcome.PARTIAL)

    diagnosis = await desk.diagnose(ALICE)
    finding = diagnosis.finding("missing_permissions")
    assert (finding.severity if finding else "ok") == verdict.severity
    assert diagnosis.facts["status_reason"] == verdict.status_reason
    assert ("every permission" in diagnosis.facts["status_reason"]) == verdict.complete
    if finding is not None:
        assert_sync_sentence(finding.detail, verdict)
        assert_sync_sentence(render_diagnosis(diagnosis), verdict)

    landing = await (await client.get(link_path((await desk.issue_connect_link(ALICE, "test")).url))).text()
    assert ("already connected" in landing) == verdict.complete
    assert_sync_sentence(landing, verdict)

    summary = (await desk.home.summary()).to_dict()
    assert summary["missing_permissions_total"] == (0 if verdict.complete else 1)


@pytest.mark.parametrize(("scopes", "severity"), [
    ("activity:read,activity:write,profile:read_all,read", "warning"),  # no private activities
    ("activity:read,read", "error"),
    ("activity:read_all,activity:write,profile:read_all,read", "ok"),
])
async def test_stored_grants_the_consent_page_cannot_make_are_judged_alike(client, runtime, scopes, severity):
    """activity:read (not read_all) comes from older grants; a row written before the verdict was one
    function still says "every needed permission": the diagnosis reads the grant, not that text."""
    desk = SupportDesk(runtime)
    url = (await desk.issue_connect_link(ALICE, "test")).url
    async with runtime.sessions() as session, session.begin():
        user = (await session.execute(select(User))).scalar_one()
        session.add(StravaConnection(user_id=user.id, athlete_id=4242, status=ConnectionStatus.CONNECTED, granted_scopes=scopes,
                                     status_reason="connected with every needed permission",
                                     connected_at=runtime.clock.now(), refresh_failures=0))
    diagnosis = await desk.diagnose(ALICE)
    finding = diagnosis.finding("missing_permissions")
    assert (finding.severity if finding else "ok") == severity
    assert diagnosis.facts["status_reason"] == grant_verdict(parse_scopes(scopes)).status_reason
    landing = await (await client.get(link_path(url))).text()
    assert ("already connected" in landing) == (severity == "ok")
    summary = (await desk.home.summary()).to_dict()
    assert [u["severity"] for u in summary["missing_permissions"]] == ([] if severity == "ok" else [severity])


async def test_the_app_home_lists_errors_before_warnings(runtime):
    desk = SupportDesk(runtime)
    async with runtime.sessions() as session, session.begin():
        for n, scopes in enumerate(["activity:read_all,activity:write,read", "read",
                                    "activity:read_all,activity:write,profile:read_all,read"]):
            user = User(email=f"u{n}@example.com", email_normalized=f"u{n}@example.com", created_at=runtime.clock.now())
            session.add(user)
            await session.flush()
            session.add(StravaConnection(user_id=user.id, athlete_id=100 + n, status=ConnectionStatus.CONNECTED,
                                         granted_scopes=scopes, refresh_failures=0,
                                         connected_at=runtime.clock.now()))
    summary = (await desk.home.summary(listed=10)).to_dict()
    assert [(u["email"], u["severity"]) for u in summary["missing_permissions"]] == [
        ("u1@example.com", "error"), ("u0@example.com", "warning")]
    assert summary["missing_permissions_total"] == 2
    one = (await desk.home.summary(listed=1)).to_dict()
    assert [u["email"] for u in one["missing_permissions"]] == ["u1@example.com"]
    assert "and 1 more" in home_text(one)
    async with runtime.sessions() as session, session.begin():  # a revoked grant is not "missing permissions"
        await session.execute(update(StravaConnection).values(status=ConnectionStatus.REVOKED))
    assert (await desk.home.summary()).to_dict()["missing_permissions_total"] == 0
