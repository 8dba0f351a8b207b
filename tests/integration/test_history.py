"""`fitglue history`: one user's merged timeline, newest first, paged by an opaque cursor."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from service.app.factory import build_app
from service.background.job_handlers import run_pending
from service.connections.refresh import sweep_due
from service.core.audit_log import add_entry
from service.db.models import ConnectionHistory, StravaConnection
from service.desk.history import HISTORY_KINDS
from service.desk.support_desk import SupportDesk, SupportError
from tests.flows import connect
from tests.webhook_support import point_public_url_at

ALICE = "alice@example.com"


@pytest.fixture
async def alice(aiohttp_client, runtime, standin, clock):
    """Alice: a link, a partial grant, a full grant, an activity event, two days of refreshes, a
    transient refresh failure, then a revocation found by the refresh (needs_reauth)."""
    client = await aiohttp_client(build_app(runtime, background=False))
    point_public_url_at(runtime, client)
    desk = SupportDesk(runtime)
    assert (await desk.webhooks.reregister_webhook("test")).ok
    url = (await desk.issue_connect_link(ALICE, "slack:UAGENT1")).url
    status, _ = await connect(client, url, granted=["read"])
    assert status == 200
    clock.advance(60)
    status, _ = await connect(client, url)
    assert status == 200
    async with runtime.sessions() as session:
        conn = (await session.execute(select(StravaConnection))).scalar_one()
    await standin.create_activity_and_notify(conn.athlete_id, name="Morning Run")
    await run_pending(runtime)
    for _ in range(3):  # three refreshes on one day, one on the next
        clock.advance(hours=5, minutes=30)
        await sweep_due(runtime)
    standin.fail_next("/oauth/token", 503)
    clock.advance(hours=5, minutes=30)
    await sweep_due(runtime)
    clock.advance(hours=1)
    standin.revoke_athlete(conn.athlete_id)
    await desk.refresh_now(ALICE, "cli:agent")
    return conn


async def test_history_merges_every_kind_newest_first(runtime, alice):
    page = await SupportDesk(runtime).history.page(ALICE, limit=200)
    body = page.to_dict()
    assert body["next_before"] is None
    entries = body["entries"]
    times = [e["at"] for e in entries]
    assert times == sorted(times, reverse=True)
    kinds = {e["kind"] for e in entries}
    assert {"link_issued", "oauth_attempt", "scopes_changed", "refresh_ok", "refresh_failed", "webhook_event",
            "job", "status_changed", "agent_action"} <= kinds
    assert kinds <= set(HISTORY_KINDS)
    for entry in entries:
        assert set(entry) >= {"at", "kind", "summary", "article"} and entry["article"].startswith("#")
    # The newest entries tell the end of the story: the refresh found the grant dead.
    statuses = [e for e in entries if e["kind"] == "status_changed"]
    assert statuses[0]["status"] == "needs_reauth" and statuses[-1]["status"] == "connected"
    failures = [e for e in entries if e["kind"] == "refresh_failed"]
    assert [f["error_class"] for f in failures] == ["grant_dead", "transient"]


async def test_successful_refreshes_collapse_to_one_entry_per_day(runtime, alice):
    entries = (await SupportDesk(runtime).history.page(ALICE, limit=200)).to_dict()["entries"]
    ok = [e for e in entries if e["kind"] == "refresh_ok"]
    assert len({e["at"][:10] for e in ok}) == len(ok) and len(ok) == 2
    assert sorted(e["count"] for e in ok) == [1, 2]
    async with runtime.sessions() as session:
        rows = (await session.execute(select(ConnectionHistory).where(ConnectionHistory.kind == "refresh_ok"))).all()
    assert len(rows) == 2


async def test_pages_follow_each_other_without_gaps_or_repeats(runtime, alice, clock):
    desk = SupportDesk(runtime)
    async with runtime.write() as session:  # several rows at one instant, in three tables
        for n in range(3):
            add_entry(session, runtime.clock, "cli:agent", f"look_{n}", ALICE, "ok")
    for _ in range(3):
        await desk.issue_connect_link(ALICE, "cli:agent")
    everything = (await desk.history.page(ALICE, limit=500)).to_dict()["entries"]
    seen: list[dict] = []
    before = None
    for _ in range(100):
        page = (await desk.history.page(ALICE, limit=3, before=before)).to_dict()
        assert len(page["entries"]) <= 3
        seen += page["entries"]
        before = page["next_before"]
        if before is None:
            break
    assert seen == everything


async def test_no_entry_holds_a_token_or_a_link(runtime, alice):
    async with runtime.sessions() as session:
        conn = (await session.execute(select(StravaConnection))).scalar_one()
    text = str((await SupportDesk(runtime).history.page(ALICE, limit=500)).to_dict())
    assert "connect/strava?t=" not in text
    assert conn.access_token_enc is None or conn.access_token_enc not in text


async def test_history_by_athlete_id_is_the_same_timeline(runtime, alice):
    desk = SupportDesk(runtime)
    by_email = (await desk.history.page(ALICE, limit=30)).to_dict()
    by_id = (await desk.history.page(str(alice.athlete_id), limit=30)).to_dict()
    # Reading by e-mail is itself no action; both pages are the same.
    assert by_email == by_id


@pytest.mark.parametrize("who,before,code,exit_code", [
    ("not an address", None, "bad_argument", 2),
    ("nobody@example.com", None, "unknown_user", 1),
    (ALICE, "12-x-3", "bad_argument", 2),
    (ALICE, "1-9-3", "bad_argument", 2),
    (ALICE, "99999999999999999999-0-1", "bad_argument", 2),
    # Tampered row ids no table holds (ids are 1..2^31-1): refused, never sent to the database (SQLite
    # raised OverflowError, PostgreSQL an int32 range error: a 500 from the admin API).
    (ALICE, "1764424980000000-0-9999999999999999999", "bad_argument", 2),
    (ALICE, f"1764424980000000-3-{2**31}", "bad_argument", 2),
    (ALICE, f"1764424980000000-1-{2**63}", "bad_argument", 2),
])
async def test_bad_who_or_cursor_is_refused_clearly(runtime, alice, who, before, code, exit_code):
    with pytest.raises(SupportError) as raised:
        await SupportDesk(runtime).history.page(who, before=before)
    assert raised.value.code == code and raised.value.exit_code == exit_code


async def test_the_cli_prints_the_same_page_and_a_next_command(runtime, alice, standin, monkeypatch, tmp_path,
                                                               capsys):
    import asyncio
    import json

    from service.app.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FITGLUE_DATABASE_URL", runtime.settings.database_url)
    monkeypatch.setenv("FITGLUE_SECRET_KEY", "test-secret-key-0123456789abcdef")
    capsys.readouterr()
    assert await asyncio.to_thread(main, ["history", ALICE, "--limit", "3", "--json"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert len(body["entries"]) == 3 and body["next_before"]
    assert await asyncio.to_thread(main, ["history", ALICE, "--limit", "3", "--before", body["next_before"]]) == 0
    text = capsys.readouterr().out
    assert "older: fitglue history alice@example.com --before " in text
    assert await asyncio.to_thread(main, ["history", ALICE, "--before", "nope", "--json"]) == 2
    assert json.loads(capsys.readouterr().out)["error"] == "bad_argument"
    assert await asyncio.to_thread(main, ["history", "nobody@example.com"]) == 1
    assert "no FitGlue user" in capsys.readouterr().err
