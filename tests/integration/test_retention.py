"""Retention: every table that grows with traffic has a rule (a FITGLUE_… setting in days), and the
sweep applies each one when the injected clock passes it (issue 9, kind 12)."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from service.app.factory import build_app
from service.background.retention import RULES, Bounded, Rule
from service.background.scheduler import periodic_jobs, retention_sweep
from service.connections import history_log
from service.connections.users import connection_for, get_or_create_user
from service.core.runtime import Runtime
from service.core.settings import ConfigError, Settings, load_settings
from service.db.models import (
    ActivityNotFound,
    ActivitySummary,
    AuditEntry,
    Base,
    BulkLinkRun,
    ConnectLink,
    Job,
    OAuthAttempt,
    OutboundEvent,
    User,
    WebhookEvent,
    WebhookRegistration,
)
from service.desk.support_desk import SupportDesk
from tests.flows import press_connect
from troubleshooting.vocabulary import ConnectionStatus

README = Path(__file__).resolve().parents[2] / "README.md"


async def count(runtime: Runtime, model: type, *where: object) -> int:
    async with runtime.sessions() as session:
        return (await session.execute(select(func.count()).select_from(model).where(*where))).scalar_one()


def rules() -> list[tuple[str, Rule]]:
    return [(table, rule) for table, entry in RULES.items() if not isinstance(entry, Bounded) for rule in entry]


# --- the registry ------------------------------------------------------------------------------------


def test_every_table_has_a_retention_rule_or_says_why_it_does_not_grow():
    tables = [table.name for table in Base.metadata.sorted_tables]
    missing = [name for name in tables if name not in RULES]
    assert not missing, f"tables without a retention rule in service/background/retention.py RULES: {missing}"
    assert not set(RULES) - set(tables), "RULES names tables that no longer exist"
    for name, entry in RULES.items():
        if isinstance(entry, Bounded):
            assert entry.why.strip(), name
        else:
            assert entry and all(isinstance(rule, Rule) for rule in entry), name


@pytest.mark.parametrize("table,rule", rules(), ids=lambda value: getattr(value, "setting", value))
def test_each_rule_is_a_documented_setting_with_a_default(tmp_path, table, rule):
    default = getattr(load_settings({}, tmp_path / "none.env"), rule.setting)
    assert isinstance(default, int) and default >= 1
    audit = "FITGLUE_AUDIT_RETENTION_DAYS"
    env = {rule.variable: "500", audit: "1000"} if rule.variable != audit else {audit: "1000"}
    assert getattr(load_settings(env, tmp_path / "none.env"), rule.setting) == int(env[rule.variable])
    row = re.search(rf"^\| `{rule.variable}` \| `{default}` \|.+$", README.read_text(), re.MULTILINE)
    assert row, f"README's configuration table has no row for {rule.variable} with its default {default}"


def test_the_audit_log_is_kept_longest(tmp_path):
    settings = load_settings({}, tmp_path / "none.env")
    audit = settings.audit_retention_days
    assert all(rule.period(settings) <= timedelta(days=audit) for _, rule in rules())
    with pytest.raises(ConfigError) as info:
        load_settings({"FITGLUE_FAILED_RETENTION_DAYS": "400"}, tmp_path / "none.env")
    assert info.value.names == ("FITGLUE_AUDIT_RETENTION_DAYS",)
    with pytest.raises(ConfigError):
        load_settings({"FITGLUE_ATTEMPT_RETENTION_DAYS": "0"}, tmp_path / "none.env")


def test_the_sweep_runs_every_retention_interval(tmp_path, runtime):
    assert load_settings({}, tmp_path / "none.env").retention_interval_s == 3600
    with pytest.raises(ConfigError) as info:
        load_settings({"FITGLUE_RETENTION_INTERVAL_S": "5"}, tmp_path / "none.env")
    assert info.value.names == ("FITGLUE_RETENTION_INTERVAL_S",)
    readme = README.read_text()
    assert "| `FITGLUE_RETENTION_INTERVAL_S` | `3600` |" in readme
    assert "| `FITGLUE_DEAD_GRANT_RETENTION_DAYS` | `7` |" in readme
    runtime.settings = runtime.settings.replaced(retention_interval_s=600)
    schedule = {name: interval for name, _, interval in periodic_jobs(runtime)}
    assert schedule["retention_sweep"] == 600


# --- every rule, applied by moving the clock ---------------------------------------------------------

# One seeder per table with rules: it stores rows that this table's rules will delete once old enough
# (dated "now"). A table given a rule without a seeder here fails test_every_rule_has_a_seeder.
Seeder = Callable[[Runtime], Awaitable[None]]


async def _user(runtime: Runtime) -> int:
    async with runtime.write() as session:
        user, _ = await get_or_create_user(session, "seed@example.com", runtime.clock.now())
        return user.id


async def seed_jobs(runtime: Runtime) -> None:
    now = runtime.clock.now()
    async with runtime.write() as session:
        for state in ("done", "failed"):
            session.add(Job(kind="probe", payload="{}", run_after=now, state=state, created_at=now, finished_at=now))


async def seed_events(runtime: Runtime) -> None:
    now = runtime.clock.now()
    async with runtime.write() as session:
        for i, state in enumerate(("processed", "ignored", "failed")):
            session.add(WebhookEvent(dedupe_key=f"seed:{i}", received_at=now, subscription_id=1, object_type="activity",
                                     object_id=i, aspect_type="create", owner_id=7, event_time=0, updates="{}",
                                     state=state, processed_at=now))


async def seed_summaries(runtime: Runtime) -> None:
    """A tombstone (the activity was deleted at Strava) of a connected athlete."""
    now = runtime.clock.now()
    async with runtime.write() as session:
        user, _ = await get_or_create_user(session, "athlete7@example.com", now)
        conn = await connection_for(session, user, now)
        conn.athlete_id, conn.status = 7, ConnectionStatus.CONNECTED
        session.add(ActivitySummary(id=1, athlete_id=7, name="Run", deleted_at=now))


async def seed_attempts(runtime: Runtime) -> None:
    user_id, now = await _user(runtime), runtime.clock.now()
    async with runtime.write() as session:
        for i in range(2):
            session.add(OAuthAttempt(user_id=user_id, state_hash=f"s{i}", browser_hash="b", started_at=now,
                                     expires_at=now + timedelta(minutes=10)))


async def seed_links(runtime: Runtime) -> None:
    user_id, now = await _user(runtime), runtime.clock.now()
    async with runtime.write() as session:
        session.add(ConnectLink(id="seed-link", user_id=user_id, issued_by="test", created_at=now, expires_at=now))


async def seed_registrations(runtime: Runtime) -> None:
    now = runtime.clock.now()
    async with runtime.write() as session:
        for _ in range(2):
            session.add(WebhookRegistration(at=now, actor="test", outcome="unchanged", steps="[]"))


async def seed_memos(runtime: Runtime) -> None:
    async with runtime.write() as session:
        session.add(ActivityNotFound(activity_id=1, athlete_id=7, answered_at=runtime.clock.now()))


async def seed_audit(runtime: Runtime) -> None:
    async with runtime.write() as session:
        session.add(AuditEntry(at=runtime.clock.now(), actor="cli:test", action="probe", target=None, result="ok"))


async def seed_history(runtime: Runtime) -> None:
    user_id, now = await _user(runtime), runtime.clock.now()
    async with runtime.write() as session:
        history_log.record_status_change(session, user_id, now, "connected", "needs_reauth", "seeded")
        await history_log.record_refreshes_ok(session, [user_id], now)


async def seed_bulk_runs(runtime: Runtime) -> None:
    now = runtime.clock.now()
    async with runtime.write() as session:
        session.add(BulkLinkRun(finding="revoked", requested_by="cli:test", state="done", created_at=now,
                                finished_at=now, force=False, total=0, sent=0, to_file=0, skipped=0, failed=0))


async def seed_outbound_events(runtime: Runtime) -> None:
    now = runtime.clock.now()
    async with runtime.write() as session:
        for i, state in enumerate(("delivered", "failed")):
            session.add(OutboundEvent(webhook_id=f"msg_seed{i}", type="strava.connection.connected", athlete_id=7,
                                      body="{}", state=state, attempts=1, created_at=now, delivered_at=now,
                                      failed_at=now))


SEEDERS: dict[str, Seeder] = {
    "jobs": seed_jobs, "webhook_events": seed_events, "activity_summaries": seed_summaries,
    "oauth_attempts": seed_attempts, "connect_links": seed_links, "webhook_registrations": seed_registrations,
    "audit_log": seed_audit, "activity_not_found": seed_memos, "outbound_events": seed_outbound_events,
    "connection_history": seed_history, "bulk_link_runs": seed_bulk_runs,
}
MODELS = {mapper.class_.__tablename__: mapper.class_ for mapper in Base.registry.mappers}


def test_every_rule_has_a_seeder():
    assert set(SEEDERS) == {table for table, _ in rules()}


@pytest.mark.parametrize("table,rule", rules(), ids=lambda value: getattr(value, "setting", value))
async def test_each_rule_deletes_only_once_its_setting_has_passed(runtime, clock, table, rule):
    await SEEDERS[table](runtime)
    model = MODELS[table]
    period = rule.period(runtime.settings)
    clock.advance(seconds=period.total_seconds() - 60)
    await retention_sweep(runtime)
    kept = await count(runtime, model)
    assert kept >= 1
    clock.advance(seconds=120)
    await retention_sweep(runtime)
    assert await count(runtime, model) < kept, f"{rule.variable} did not apply to {table} after {period}"


# --- the rules' finer points, through the real routes -------------------------------------------------


async def test_connect_attempts_are_pruned_keeping_each_users_newest(aiohttp_client, runtime, clock):
    """The issue's example: one valid link, many presses of "Connect with Strava", one row each."""
    client = await aiohttp_client(build_app(runtime, background=False))
    desk = SupportDesk(runtime)
    link = (await desk.issue_connect_link("alice@example.com", "test")).url
    for _ in range(3):
        await press_connect(client, link)
    clock.advance(minutes=1)
    await press_connect(client, (await desk.issue_connect_link("bob@example.com", "test")).url)
    assert await count(runtime, OAuthAttempt) == 4

    clock.advance(days=runtime.settings.attempt_retention_days - 1)
    await retention_sweep(runtime)
    assert await count(runtime, OAuthAttempt) == 4
    clock.advance(days=2)
    await retention_sweep(runtime)
    async with runtime.sessions() as session:
        left = (await session.execute(select(User.email, OAuthAttempt.id).join(User, User.id == OAuthAttempt.user_id)
                                      .order_by(OAuthAttempt.id))).all()
    assert [email for email, _ in left] == ["alice@example.com", "bob@example.com"]
    assert left[0][1] == 3  # alice's newest: the diagnosis still explains her last Connect
    diagnosis = await desk.diagnose("alice@example.com")
    assert diagnosis.status == "not_connected"


async def test_connect_links_go_after_their_expiry_plus_the_retention(runtime, clock):
    desk = SupportDesk(runtime)
    await desk.issue_connect_link("alice@example.com", "test")
    clock.advance(runtime.settings.link_ttl_s, days=runtime.settings.link_retention_days - 1)
    await desk.issue_connect_link("bob@example.com", "test")
    await retention_sweep(runtime)
    assert await count(runtime, ConnectLink) == 2
    clock.advance(days=2)
    await retention_sweep(runtime)
    async with runtime.sessions() as session:
        left = (await session.execute(select(User.email).join(ConnectLink, ConnectLink.user_id == User.id))).all()
    assert [row[0] for row in left] == ["bob@example.com"]


async def test_parked_jobs_stay_retryable_until_the_failed_retention(runtime, clock):
    await seed_jobs(runtime)
    clock.advance(days=runtime.settings.retention_days + 1)
    await retention_sweep(runtime)
    assert await count(runtime, Job, Job.state == "failed") == 1 and await count(runtime, Job) == 1
    clock.advance(days=runtime.settings.failed_retention_days - runtime.settings.retention_days)
    await retention_sweep(runtime)
    assert await count(runtime, Job) == 0


async def test_the_newest_webhook_registration_stays_for_the_diagnosis(runtime, clock):
    await seed_registrations(runtime)
    clock.advance(days=runtime.settings.registration_retention_days * 3)
    await retention_sweep(runtime)
    assert await count(runtime, WebhookRegistration) == 1


async def test_the_audit_log_outlives_everything_else(runtime, clock):
    for seeder in SEEDERS.values():
        await seeder(runtime)
    settings: Settings = runtime.settings
    clock.advance(days=settings.audit_retention_days - 1)
    await retention_sweep(runtime)
    assert await count(runtime, AuditEntry) == 1
    for table in set(SEEDERS) - {"audit_log", "oauth_attempts", "webhook_registrations"}:
        assert await count(runtime, MODELS[table]) == 0, table
    clock.advance(days=2)
    await retention_sweep(runtime)
    assert await count(runtime, AuditEntry) == 0
