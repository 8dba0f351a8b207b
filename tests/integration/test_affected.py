"""`fitglue affected FINDING`: the indexed selections agree with the diagnosis, user by user."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from service.connections.users import connection_for, get_or_create_user
from service.core.clock import iso_utc
from service.db.models import OAuthAttempt, StravaConnection, WebhookEvent
from service.desk.affected import AFFECTED_FINDINGS
from service.desk.support_desk import SupportDesk, SupportError
from service.desk.support_view_models import AffectedBody
from tests.webhook_support import connect_directly, subscribed_service
from troubleshooting.vocabulary import ConnectionStatus, RefreshErrorKind


async def _set(runtime, email, **values) -> None:
    async with runtime.write() as session:
        user, _ = await get_or_create_user(session, email, runtime.clock.now())
        conn = await connection_for(session, user, runtime.clock.now())
        await session.execute(update(StravaConnection).where(StravaConnection.id == conn.id).values(**values))


async def _attempt(runtime, email, outcome, started, **more) -> None:
    async with runtime.write() as session:
        user, _ = await get_or_create_user(session, email, runtime.clock.now())
        await connection_for(session, user, runtime.clock.now())
        session.add(OAuthAttempt(user_id=user.id, state_hash=f"s-{email}-{outcome}", browser_hash="b",
                                 started_at=started, expires_at=started + timedelta(minutes=10), outcome=outcome,
                                 **more))


@pytest.fixture
async def population(aiohttp_client, runtime, standin, clock):
    """One or more users per finding, a few healthy ones, and some who had a finding and lost it."""
    await subscribed_service(aiohttp_client, runtime)
    start = clock.now()
    emails = {}
    for name in ("reauth1", "reauth2", "revoked", "partial", "minor", "failing", "silent", "healthy",
                 "recovered", "denied", "abandoned", "retried"):
        emails[name] = f"{name}@example.com"
        granted = {"partial": ["read"], "minor": ["read", "activity:read_all", "activity:write"]}.get(name)
        await connect_directly(runtime, standin, emails[name], granted=granted)
        clock.advance(hours=1)
    now = clock.now()
    await _set(runtime, emails["reauth1"], status=ConnectionStatus.NEEDS_REAUTH, status_changed_at=now - timedelta(days=2))
    await _set(runtime, emails["reauth2"], status=ConnectionStatus.NEEDS_REAUTH, status_changed_at=now - timedelta(hours=1))
    await _set(runtime, emails["revoked"], status=ConnectionStatus.REVOKED, status_changed_at=now - timedelta(days=1))
    await _set(runtime, emails["failing"], refresh_failures=2, last_refresh_error_kind=RefreshErrorKind.TRANSIENT,
               last_refresh_error="timeout", last_refresh_error_at=now, refresh_failing_since=now - timedelta(hours=3))
    await _set(runtime, emails["recovered"], refresh_failures=0, last_refresh_at=now, refresh_failing_since=None)
    await _set(runtime, emails["silent"], connected_at=start - timedelta(days=40), last_event_at=start - timedelta(days=20))
    for name in ("denied", "abandoned", "retried"):
        await _set(runtime, emails[name], status=ConnectionStatus.NOT_CONNECTED, athlete_id=None,
                   connected_at=start - timedelta(days=90))
    await _attempt(runtime, emails["denied"], "denied", now - timedelta(hours=5), reason="the athlete said no")
    await _attempt(runtime, emails["abandoned"], "pending", now - timedelta(hours=2))
    await _attempt(runtime, emails["retried"], "denied", now - timedelta(hours=3))
    await _attempt(runtime, emails["retried"], "pending", now - timedelta(minutes=1))  # still in progress
    async with runtime.write() as session:  # somebody else is heard, recently
        session.add(WebhookEvent(dedupe_key="heard", received_at=now - timedelta(hours=1), subscription_id=1,
                                 object_type="activity", object_id=1, aspect_type="create", owner_id=1,
                                 event_time=0, state="processed", processed_at=now))
    return emails


async def test_every_selection_matches_the_diagnosis_of_every_user(runtime, population):
    desk = SupportDesk(runtime)
    diagnosed: dict[str, set[str]] = {}
    for email in population.values():
        diagnosis = (await desk.diagnose(email)).to_dict()
        diagnosed[email] = {f["id"] for f in diagnosis["findings"]}
    for finding in AFFECTED_FINDINGS:
        report = (await desk.affected.report(finding)).to_dict()
        expected = {email for email, ids in diagnosed.items() if finding in ids}
        assert expected, f"the population has nobody with {finding}: the test would not check it"
        assert {u["email"] for u in report["users"]} == expected, finding
        assert report["count"] == len(expected) == sum(d["count"] for d in report["by_day"])


async def test_the_report_names_since_and_counts_by_day(runtime, population, clock):
    report = (await SupportDesk(runtime).affected.report("needs_reauth")).to_dict()
    assert set(report) == {"finding", "count", "since", "users", "by_day"}
    assert report["finding"] == "needs_reauth" and report["since"] is None
    assert [u["email"] for u in report["users"]] == ["reauth2@example.com", "reauth1@example.com"]  # newest first
    assert [d["count"] for d in report["by_day"]] == [1, 1]
    assert report["by_day"][0]["date"] < report["by_day"][1]["date"]
    first = report["users"][0]
    assert set(first) == {"email", "athlete_id", "since", "last_change"} and first["athlete_id"]
    recent = (await SupportDesk(runtime).affected.report("needs_reauth", (clock.now() - timedelta(hours=6)).isoformat())
              ).to_dict()
    assert recent["count"] == 1 and recent["since"] is not None


async def test_only_twenty_are_named_but_all_are_counted(runtime, clock):
    for n in range(25):
        await _set(runtime, f"user{n}@example.com", status=ConnectionStatus.REVOKED, status_changed_at=clock.now())
        clock.advance(seconds=1)
    report = (await SupportDesk(runtime).affected.report("revoked")).to_dict()
    assert report["count"] == 25 and len(report["users"]) == 20
    assert report["users"][0]["email"] == "user24@example.com"


async def test_a_since_before_the_year_1000_is_answered(runtime, population):
    """`fitglue affected needs_reauth --since 0001-01-01` (and the admin API's since=0001-01-01) is a
    valid time: iso_utc wrote it '1-01-01T00:00:00Z' (strftime's %Y has no leading zeros), which the
    JSON body then refused, so the command 'failed unexpectedly (ValidationError)' and the API said 500."""
    body = AffectedBody.of(await SupportDesk(runtime).affected.report("needs_reauth", "0001-01-01")).to_json()
    assert body["since"] == "0001-01-01T00:00:00Z" and body["count"] == 2
    assert iso_utc(datetime(999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)) == "0999-12-31T23:59:59Z"


@pytest.mark.parametrize("finding,since", [("healthy", None), ("needs_reauth; drop", None),
                                           ("needs_reauth", "yesterday"), ("revoked", "2026-13-01")])
async def test_unknown_finding_or_bad_since_is_a_usage_error(runtime, finding, since):
    with pytest.raises(SupportError) as raised:
        await SupportDesk(runtime).affected.report(finding, since)
    assert raised.value.code == "bad_argument" and raised.value.exit_code == 2


async def test_cli_and_admin_api_give_the_desks_report(runtime, population, aiohttp_client, monkeypatch, tmp_path,
                                                       capsys):
    import asyncio
    import json

    from service.app.cli import main
    from service.app.factory import build_app

    expected = (await SupportDesk(runtime).affected.report("needs_reauth")).to_dict()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FITGLUE_DATABASE_URL", runtime.settings.database_url)
    monkeypatch.setenv("FITGLUE_SECRET_KEY", "test-secret-key-0123456789abcdef")
    capsys.readouterr()
    assert await asyncio.to_thread(main, ["affected", "needs_reauth", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == expected
    assert await asyncio.to_thread(main, ["affected", "needs_reauth"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("2 user(s) with needs_reauth:") and "reauth1@example.com" in text
    assert await asyncio.to_thread(main, ["affected", "healthy"]) == 2
    assert "affected` knows the findings" in capsys.readouterr().err

    runtime.settings = runtime.settings.replaced(admin_token="admin-token-for-tests-0123456789")
    client = await aiohttp_client(build_app(runtime, background=False))
    auth = {"Authorization": "Bearer admin-token-for-tests-0123456789"}
    response = await client.get("/admin/api/affected", params={"finding": "needs_reauth"}, headers=auth)
    assert response.status == 200 and await response.json() == expected
    response = await client.get("/admin/api/affected", params={"finding": "revoked", "since": "soon"}, headers=auth)
    assert response.status == 400 and (await response.json())["error"] == "bad_argument"
    response = await client.get("/admin/api/affected", headers=auth)
    assert response.status == 400
