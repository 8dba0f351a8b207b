"""SupportDesk.forget: deauthorize, delete the user's data, keep only an anonymised audit entry."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from service.app.factory import build_app
from service.connections.erasure import erasure_label
from service.db.models import (
    ActivitySummary,
    AuditEntry,
    ConnectLink,
    Job,
    OAuthAttempt,
    StravaConnection,
    User,
    WebhookEvent,
)
from service.desk.support_desk import SupportDesk, SupportError
from tests.flows import connect

ALICE = "Alice@Example.com"


async def count(runtime, model, *where) -> int:
    async with runtime.sessions() as session:
        return (await session.execute(select(func.count()).select_from(model).where(*where))).scalar_one()


@pytest.fixture
async def alice(aiohttp_client, runtime, clock):
    """Alice connected, with an event, an activity summary and a queued job; bob connected too."""
    desk = SupportDesk(runtime)
    client = await aiohttp_client(build_app(runtime, background=False))
    for email in (ALICE, "bob@example.com"):
        status, _ = await connect(client, (await desk.issue_connect_link(email, "cli:agent")).url)
        assert status == 200
    async with runtime.sessions() as session, session.begin():
        conns = {c.user_id: c for c in (await session.execute(select(StravaConnection))).scalars()}
        users = {u.email: u for u in (await session.execute(select(User))).scalars()}
        a, b = conns[users[ALICE].id], conns[users["bob@example.com"].id]
        for i, conn in enumerate((a, b)):
            session.add(WebhookEvent(dedupe_key=f"k{i}", received_at=clock.now(), subscription_id=1,
                                     object_type="activity", object_id=100 + i, aspect_type="create",
                                     owner_id=conn.athlete_id, event_time=0, updates="{}", state="done"))
            session.add(ActivitySummary(id=100 + i, athlete_id=conn.athlete_id, name="Run"))
            session.add(Job(kind="fetch_activity", payload="{}", run_after=clock.now() + timedelta(minutes=5),
                            user_id=conn.user_id, created_at=clock.now()))
        return a.athlete_id, b.athlete_id


async def test_forget_erases_the_user_and_keeps_an_anonymous_audit_entry(runtime, alice, standin):
    alice_athlete, bob_athlete = alice
    result = await SupportDesk(runtime).forget("alice@example.com", "cli:agent")
    assert result.deauthorized and result.warning is None
    assert result.forgotten == await erasure_label(runtime, ALICE) == await erasure_label(runtime, "alice@example.com")
    assert result.deleted["users"] == 1 and result.deleted["webhook_events"] == 1
    assert standin.count_calls("POST", "/oauth/deauthorize") == 1
    assert alice_athlete not in standin.state.grants  # Strava forgot the grant too

    assert await count(runtime, User, func.lower(User.email) == "alice@example.com") == 0
    assert await count(runtime, StravaConnection, StravaConnection.athlete_id == alice_athlete) == 0
    assert await count(runtime, WebhookEvent, WebhookEvent.owner_id == alice_athlete) == 0
    assert await count(runtime, ActivitySummary, ActivitySummary.athlete_id == alice_athlete) == 0
    assert await count(runtime, OAuthAttempt) == 1 and await count(runtime, ConnectLink) == 1  # bob's
    assert await count(runtime, Job) == 2  # bob's: the one above and his Connect's catch-up
    # bob is untouched
    assert await count(runtime, WebhookEvent, WebhookEvent.owner_id == bob_athlete) == 1
    assert (await SupportDesk(runtime).diagnose("bob@example.com")).status == "connected"

    async with runtime.sessions() as session:
        entries = (await session.execute(select(AuditEntry).order_by(AuditEntry.id))).scalars().all()
    assert all("alice" not in f"{e.target} {e.detail}".lower() for e in entries)
    forget_entry = entries[-1]
    assert (forget_entry.action, forget_entry.actor, forget_entry.target, forget_entry.result) == (
        "forget", "cli:agent", result.forgotten, "ok")
    # the earlier link issued for her now carries the same label
    assert any(e.action == "issue_connect_link" and e.target == result.forgotten for e in entries)
    assert (await SupportDesk(runtime).diagnose("alice@example.com")).status == "unknown_user"


async def test_forget_deletes_tokens_even_when_strava_fails(runtime, alice, standin):
    standin.fail_next("/oauth/deauthorize", 503)
    result = await SupportDesk(runtime).forget(ALICE, "admin-api")
    assert not result.deauthorized and "503" in (result.warning or "")
    assert await count(runtime, User) == 1
    async with runtime.sessions() as session:
        entry = (await session.execute(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(1))).scalar_one()
    assert entry.result == "ok_with_warning" and "alice" not in (entry.detail or "").lower()


async def test_forget_after_disconnect_still_removes_the_athletes_events(runtime, alice):
    alice_athlete, _ = alice
    desk = SupportDesk(runtime)
    await desk.disconnect(ALICE, "cli:agent")  # frees the athlete id on the connection
    await desk.forget(ALICE, "cli:agent")
    assert await count(runtime, WebhookEvent, WebhookEvent.owner_id == alice_athlete) == 0


async def test_forget_unknown_user_and_bad_email(runtime):
    desk = SupportDesk(runtime)
    unknown = await desk.forget("nobody@example.com", "cli:agent")
    # Nothing to erase: a warning, and no erasure label minted for a stranger.
    assert unknown.forgotten is None and unknown.deleted == {} and unknown.deauthorized is False
    assert unknown.warning == "there is no FitGlue user with e-mail nobody@example.com, so nothing was erased"
    with pytest.raises(SupportError) as bad:
        await desk.forget("nope", "cli:agent")
    assert bad.value.code == "bad_email" and bad.value.exit_code == 2
    entries = await desk.audit_entries()
    assert [(e["action"], e["target"], e["result"]) for e in entries] == [("forget", None, "nothing_to_do")]
    assert "nobody" not in str(entries)


async def test_audit_entries_newest_first_with_filters_and_paging(runtime):
    desk = SupportDesk(runtime)
    for i in range(5):
        await desk.issue_connect_link(f"u{i}@example.com", "cli:a" if i % 2 else "admin-api")
    entries = await desk.audit_entries(limit=3)
    assert [e["target"] for e in entries] == ["u4@example.com", "u3@example.com", "u2@example.com"]
    assert set(entries[0]) == {"id", "at", "actor", "action", "target", "result", "detail", "duration_ms"}
    older = await desk.audit_entries(limit=3, before_id=entries[-1]["id"])
    assert [e["target"] for e in older] == ["u1@example.com", "u0@example.com"]
    assert [e["target"] for e in await desk.audit_entries(actor="cli:a")] == ["u3@example.com", "u1@example.com"]
    assert len(await desk.audit_entries(target="U2@example.com")) == 1
    assert await desk.audit_entries(action="forget") == []
