"""`forget` erases for good (issue 9, kind 13): nothing it promises to erase survives in any table,
and the label the audit log keeps cannot be confirmed by hashing a guessed address.

The registry in `service.connections.erasure.ERASURE` names every table: erased by forget (with the columns
that tie a row to a user) or holding no user data (and why). These tests walk Base.metadata against
it, so a table or a user-looking column added without erasure fails them.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import Integer, String, Text, func, or_, select, true

from service.app.bootstrap import open_runtime
from service.app.factory import build_app
from service.background.job_handlers import run_pending
from service.connections.erasure import ERASURE, LABEL_SALT_KEY, Erased, NoUserData, erasure_label, label_salt
from service.core.audit_log import add_entry
from service.core.runtime import Runtime
from service.db.app_state import get_value
from service.db.migrate import alembic_config
from service.db.models import (
    AppState,
    AuditEntry,
    Base,
    Job,
    OutboundEvent,
    StravaConnection,
    User,
    WebhookEvent,
)
from service.desk.support_desk import SupportDesk
from service.outbox import USER_ERASED
from tests.conftest import make_settings
from tests.dbutil import fresh_database_url
from tests.events.conftest import EVENTS_SECRET
from tests.flows import connect
from tests.webhook_support import point_public_url_at

ALICE = "Alice@Example.com"
# Contains ALICE's address: erasing Alice must not touch her.
MALICE = "malice@example.com"
BOB = "bob@example.com"

# What each column that can tie a row to a user holds; a column declared in ERASURE but unknown here
# fails test_every_table_is_erased_by_forget_or_holds_no_user_data (teach the test about it).
HOLDS = {"id": "user", "user_id": "user", "athlete_id": "athlete", "owner_id": "athlete", "email": "email",
         "email_normalized": "email", "dedupe_key": "event_job", "target": "text", "detail": "text", "reason": "text"}
# A column with one of these names (or a reference to users.id) can hold a user's data.
USER_LOOKING = re.compile(r"email|athlete|owner|user_id")


def user_looking_columns(table: Any) -> set[str]:
    return {c.name for c in table.columns
            if USER_LOOKING.search(c.name) or any(fk.column.table.name == "users" for fk in c.foreign_keys)}


def test_every_table_is_erased_by_forget_or_holds_no_user_data():
    tables = {table.name: table for table in Base.metadata.sorted_tables}
    assert not set(tables) - set(ERASURE), f"tables missing from service/erasure.py ERASURE: {set(tables) - set(ERASURE)}"
    assert not set(ERASURE) - set(tables), "ERASURE names tables that no longer exist"
    for name, entry in ERASURE.items():
        table = tables[name]
        if isinstance(entry, NoUserData):
            assert entry.why.strip() and not user_looking_columns(table), name
            continue
        assert isinstance(entry, Erased) and entry.how in ("deleted", "anonymised"), name
        assert set(entry.columns) <= set(table.columns.keys()), name
        assert user_looking_columns(table) <= set(entry.columns), f"{name}: undeclared user columns"
        assert all(column in HOLDS for column in entry.columns), f"{name}: tell the test what {entry.columns} hold"


# --- a user with data in every table forget erases ---------------------------------------------------


def mentions(email: str, athletes: set[int]) -> re.Pattern[str]:
    """The e-mail as a whole address, or an athlete id as a whole number (written for this test)."""
    parts = [rf"(?<![\w.+-]){re.escape(email.lower())}(?![\w-])"] + [rf"(?<!\d){a}(?!\d)" for a in athletes]
    return re.compile("|".join(parts), re.IGNORECASE)


class Person:
    def __init__(self, email: str) -> None:
        self.email = email
        self.user_id = 0
        self.athletes: set[int] = set()
        self.event_ids: set[int] = set()

    def ties(self, column: Any) -> Any:
        """A condition: this column names the person."""
        kind = HOLDS[column.name]
        if kind == "user":
            return column == self.user_id
        if kind == "athlete":
            return column.in_(self.athletes)
        if kind == "email":
            return func.lower(column) == self.email.lower()
        if kind == "event_job":
            return column.in_([f"event:{i}" for i in self.event_ids])
        return or_(*(func.lower(column).contains(n) for n in [self.email.lower(), *map(str, self.athletes)]))

    def named_in(self, value: str | None) -> bool:
        return bool(value) and bool(mentions(self.email, self.athletes).search(value or ""))


def kept_by_contract(table: Any) -> Any:
    """Rows the contract keeps after forget: the pending `fitglue.user.erased` announcement, which
    carries the athlete id (README "Outbound events"); test_forget_announces_the_erasure checks it."""
    return table.c.type != USER_ERASED if table.name == "outbound_events" else true()


async def rows_naming(runtime: Runtime, person: Person) -> dict[str, int]:
    """Per table in ERASURE, how many rows tie to the person (text columns: whole-word mentions)."""
    found: dict[str, int] = {}
    async with runtime.sessions() as session:
        for table in Base.metadata.sorted_tables:
            entry = ERASURE[table.name]
            if not isinstance(entry, Erased):
                continue
            columns = [table.c[name] for name in entry.columns]
            rows = (await session.execute(select(*columns).where(or_(*(person.ties(c) for c in columns)),
                                                                 kept_by_contract(table)))).all()
            # The SQL match is wide (LIKE); whole-word mentions decide for text.
            found[table.name] = sum(1 for row in rows if any(
                v is not None and _matches(person, c, v) for c, v in zip(columns, row, strict=True)))
    return found


def _matches(person: Person, column: Any, value: Any) -> bool:
    kind = HOLDS[column.name]
    if kind == "user":
        return value == person.user_id
    if kind == "athlete":
        return value in person.athletes
    if kind == "email":
        return str(value).lower() == person.email.lower()
    if kind == "event_job":
        return value in {f"event:{i}" for i in person.event_ids}
    return person.named_in(value)


async def every_text_mentioning(runtime: Runtime, person: Person) -> list[str]:
    """Every string column of every table, scanned for the person's e-mail or athlete ids."""
    hits = []
    async with runtime.sessions() as session:
        for table in Base.metadata.sorted_tables:
            for column in table.columns:
                if isinstance(column.type, (String, Text)):
                    for (value,) in (await session.execute(select(column).where(
                            column.is_not(None), kept_by_contract(table)))).all():
                        if person.named_in(value):
                            hits.append(f"{table.name}.{column.name}: {value}")
                elif isinstance(column.type, Integer) and HOLDS.get(column.name) == "athlete":
                    count = (await session.execute(select(func.count()).select_from(table).where(
                        column.in_(person.athletes), kept_by_contract(table)))).scalar_one()
                    if count:
                        hits.append(f"{table.name}.{column.name}: {count} row(s)")
    return hits


@pytest.fixture
async def people(aiohttp_client, runtime, standin) -> dict[str, Person]:
    """Alice and Bob connected, each with fetched activities, a renamed one, an event that arrived
    before they connected (its job has no user id), Slack audit entries naming them by athlete id
    and in free text, outbound events announcing all that; a refused attempt of Bob's names Alice's
    athlete; Malice, whose address contains Alice's, was only sent a link."""
    runtime.settings = runtime.settings.replaced(events_url="http://127.0.0.1:9/events", events_secret=EVENTS_SECRET)
    client = await aiohttp_client(build_app(runtime, background=False))
    point_public_url_at(runtime, client)
    desk = SupportDesk(runtime)
    assert (await desk.webhooks.reregister_webhook("test")).ok
    found: dict[str, Person] = {}
    for email in (ALICE, BOB):
        person = found[email] = Person(email)
        athlete = standin.add_athlete()
        person.athletes.add(athlete)
        await standin.push_event(standin.event("create", "activity", 10_000 + athlete, athlete, {}))
        status, _ = await connect(client, (await desk.issue_connect_link(email, "cli:agent")).url, athlete_id=athlete)
        assert status == 200
        activity = await standin.create_activity_and_notify(athlete, name="Morning Run")
        await standin.push_event(standin.event("update", "activity", activity, athlete, {"title": "Run with Sam"}))
        async with runtime.write() as session:
            add_entry(session, runtime.clock, "slack:U1", "slack_command:diagnose", str(athlete), "allowed")
            add_entry(session, runtime.clock, "slack:U1", "slack_command:diagnoze", f"diagnoze {email.lower()}",
                      "allowed", f"asked about {email} by mistake")
    await desk.issue_connect_link(MALICE, "cli:agent")
    [alice_athlete] = found[ALICE].athletes
    status, _ = await connect(client, (await desk.issue_connect_link(BOB, "cli:agent")).url, athlete_id=alice_athlete)
    assert status == 409  # Bob signed in as Alice's athlete: his refused attempt names her athlete id
    await run_pending(runtime)
    async with runtime.sessions() as session:
        for person in found.values():
            person.user_id = (await session.execute(select(User.id).where(
                User.email_normalized == person.email.lower()))).scalar_one()
            person.event_ids = set((await session.execute(select(WebhookEvent.id).where(
                WebhookEvent.owner_id.in_(person.athletes)))).scalars())
    return found


async def test_forget_leaves_nothing_that_names_the_user_in_any_table(runtime, people):
    alice, bob = people[ALICE], people[BOB]
    before = await rows_naming(runtime, alice)
    empty = [table for table, n in before.items() if n == 0]
    assert not empty, f"the fixture stores nothing of Alice in {empty}: this test would not check them"
    async with runtime.sessions() as session:
        untied = (await session.execute(select(func.count()).select_from(WebhookEvent).where(
            WebhookEvent.id.in_(alice.event_ids)))).scalar_one()
    assert untied == 3  # the early event, the create and the update

    result = await SupportDesk(runtime).forget(ALICE, "cli:agent")
    assert result.deauthorized

    after = await rows_naming(runtime, alice)
    assert after == {table: 0 for table in after}, after
    assert await every_text_mentioning(runtime, alice) == []
    assert all(n > 0 for table, n in (await rows_naming(runtime, bob)).items()), "Bob's data was touched"
    async with runtime.sessions() as session:
        targets = (await session.execute(select(AuditEntry.target))).scalars().all()
    assert MALICE in targets  # her entry is not Alice's
    # The link issued, Slack by athlete id, Slack in free text ("diagnoze <label>") and forget itself.
    assert sum(result.forgotten in (target or "") for target in targets) == 4


async def test_forget_announces_the_erasure_with_nothing_but_the_athlete_id_and_the_label(runtime, people):
    alice = people[ALICE]
    [athlete] = alice.athletes
    result = await SupportDesk(runtime).forget(ALICE, "cli:agent")
    async with runtime.sessions() as session:
        kept = (await session.execute(select(OutboundEvent).where(OutboundEvent.type == USER_ERASED))).scalars().all()
    assert [(e.athlete_id, e.user_id, e.state) for e in kept] == [(athlete, None, "pending")]
    assert json.loads(kept[0].body)["data"] == {"athlete_id": athlete, "status": "unknown_user",
                                                "label": result.forgotten}


async def test_forget_removes_event_jobs_that_carry_no_user_id(runtime, people):
    """The issue's second example: the job of an event that arrived before the Connect has no user id."""
    alice = people[ALICE]
    keys = [f"event:{i}" for i in alice.event_ids]
    async with runtime.sessions() as session:
        orphans = (await session.execute(select(func.count()).select_from(Job).where(
            Job.user_id.is_(None), Job.dedupe_key.in_(keys)))).scalar_one()
    assert orphans == 1
    await SupportDesk(runtime).forget(ALICE, "cli:agent")
    async with runtime.sessions() as session:
        left = (await session.execute(select(Job.dedupe_key))).scalars().all()
    assert not set(left) & set(keys)


# --- the label ---------------------------------------------------------------------------------------


def unsalted_guesses(email: str) -> set[str]:
    """What anyone can compute from a guessed address."""
    address = email.strip().lower()
    return {hashlib.new(name, address.encode()).hexdigest() for name in ("md5", "sha1", "sha256", "sha512")}


async def test_the_forget_label_cannot_be_confirmed_by_hashing_a_guess(runtime, people):
    """The issue's example: `user:sha256:<12 hex>` was the unsalted SHA-256 of the e-mail."""
    result = await SupportDesk(runtime).forget("alice@example.com", "cli:agent")
    assert re.fullmatch(r"user:hmac:[0-9a-f]{16}", result.forgotten)
    digest = result.forgotten.rsplit(":", 1)[1]
    assert not any(guess.startswith(digest) or digest in guess for guess in unsalted_guesses(ALICE))
    async with runtime.sessions() as session:
        entries = (await session.execute(select(AuditEntry.target, AuditEntry.detail))).all()
        salt = await get_value(session, LABEL_SALT_KEY)
    assert not any("sha256" in f"{t} {d}" for t, d in entries)
    assert salt is not None and len(bytes.fromhex(salt)) == 32
    expected = hmac.new(bytes.fromhex(salt), b"alice@example.com", hashlib.sha256).hexdigest()[:16]
    assert result.forgotten == f"user:hmac:{expected}"


async def test_the_salt_is_per_installation_and_survives_a_key_rotation(runtime, standin, clock, tmp_path):
    label = await erasure_label(runtime, ALICE)
    rotated = await open_runtime(make_settings(str(runtime.engine.url.render_as_string(hide_password=False)), standin,
                                               secret_key="a-brand-new-secret-key-0123456789",
                                               previous_secret_keys=(runtime.settings.secret_key,)), clock)
    try:
        assert await erasure_label(rotated, ALICE) == label
    finally:
        await rotated.close()
    (tmp_path / "other").mkdir()
    async with fresh_database_url(tmp_path / "other") as url:
        from service.db.migrate import upgrade_to_head

        other = await open_runtime(make_settings(url, standin), clock)
        try:
            await upgrade_to_head(other.engine)
            assert await erasure_label(other, ALICE) != label
        finally:
            await other.close()


async def test_the_salt_is_made_once_even_when_replicas_race(runtime):
    salts = await asyncio.gather(*(label_salt(runtime) for _ in range(8)))
    assert len(set(salts)) == 1
    async with runtime.sessions() as session:
        assert (await session.execute(select(func.count()).select_from(AppState).where(
            AppState.key == LABEL_SALT_KEY))).scalar_one() == 1


async def upgrade(runtime: Runtime, revision: str) -> None:
    cfg = alembic_config(runtime.engine.url.render_as_string(hide_password=False))

    def run(sync_conn: Any) -> None:
        cfg.attributes["connection"] = sync_conn
        command.upgrade(cfg, revision)

    async with runtime.engine.begin() as conn:
        await conn.run_sync(run)


async def test_labels_written_before_the_salt_are_made_unguessable_by_migration_0006(
        database_url, standin, clock):
    rt = await open_runtime(make_settings(database_url, standin), clock)
    try:
        await upgrade(rt, "0003")
        legacy = "user:sha256:" + hashlib.sha256(b"alice@example.com").hexdigest()[:12]
        async with rt.write() as session:
            for action in ("issue_connect_link", "forget"):
                add_entry(session, clock, "cli:agent", action, legacy, "ok")
            add_entry(session, clock, "cli:agent", "issue_connect_link", "bob@example.com", "ok")
        await upgrade(rt, "0006")
        async with rt.sessions() as session:
            targets = (await session.execute(select(AuditEntry.target).order_by(AuditEntry.id))).scalars().all()
        salt = await label_salt(rt)  # the one the migration made: forget uses it from now on
        assert targets == [f"user:hmac:{hmac.new(salt, legacy.encode(), hashlib.sha256).hexdigest()[:16]}"] * 2 + [
            "bob@example.com"]
    finally:
        await rt.close()


def test_the_migration_uses_the_salt_key_of_the_code():
    source = (Path(__file__).resolve().parents[2] / "service/db/migrations/versions/0006_erasure_label_salt.py"
              ).read_text()
    assert f"SALT_KEY = '{LABEL_SALT_KEY}'" in source


async def test_forget_by_athlete_id_lookup_is_gone_too(runtime, people):
    alice = people[ALICE]
    [athlete] = alice.athletes
    await SupportDesk(runtime).forget(ALICE, "cli:agent")
    assert (await SupportDesk(runtime).diagnose(str(athlete))).status == "unknown_user"
    async with runtime.sessions() as session:
        assert (await session.execute(select(func.count()).select_from(StravaConnection).where(
            StravaConnection.athlete_id == athlete))).scalar_one() == 0
