"""`fitglue events`, `events retry`, `events replay` and the same admin routes (issue 12): shapes,
bad input as a plain 4xx / exit 2 that changes nothing, and a replay with new webhook-ids naming the
originals in `data.replay_of`."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select, update

from service.app.cli import main
from service.app.factory import build_app
from service.background.job_handlers import deliver_pending
from service.db.models import AuditEntry, OutboundEvent
from service.outbox import CONNECTED, write_event
from tests.events.conftest import EVENTS_SECRET
from tests.integration import test_cli_core

TOKEN = "admin-token-for-tests-0123456789"
EVENT_KEYS = {"id", "type", "athlete_id", "state", "attempts", "next_attempt_at", "last_error", "created_at",
              "delivered_at"}


async def seed(runtime, athlete: int, event_type: str = CONNECTED) -> None:
    async with runtime.write() as session:
        await write_event(session, runtime.settings, runtime.clock.now(), event_type,
                          {"email": "x@example.com", "athlete_id": athlete, "status": "connected"}, athlete_id=athlete)


@pytest.fixture
async def api(aiohttp_client, events_runtime):
    events_runtime.settings = events_runtime.settings.replaced(admin_token=TOKEN)
    client = await aiohttp_client(build_app(events_runtime, background=False))

    async def call(method: str, path: str, expect: int, **kw):
        headers = {"Authorization": f"Bearer {TOKEN}", **kw.pop("headers", {})}
        response = await client.request(method, "/admin/api" + path, headers=headers, **kw)
        body = await response.json()
        assert response.status == expect, body
        return body

    return call


async def count(runtime) -> int:
    async with runtime.sessions() as session:
        return (await session.execute(select(func.count()).select_from(OutboundEvent))).scalar_one()


async def test_admin_lists_pages_retries_and_replays(api, events_runtime, receiver, clock):
    runtime = events_runtime
    for athlete in (11, 12, 11):
        await seed(runtime, athlete)
    body = await api("GET", "/events", 200, params={"limit": "2"})
    assert [set(e) >= EVENT_KEYS for e in body["events"]] == [True, True]
    assert [e["id"] for e in body["events"]] == [3, 2] and body["next_before"] == 2
    assert body["events"][0]["state"] == "pending" and body["events"][0]["next_attempt_at"].endswith("Z")
    rest = await api("GET", "/events", 200, params={"limit": "2", "before": "2"})
    assert [e["id"] for e in rest["events"]] == [1] and rest["next_before"] is None
    assert [e["id"] for e in (await api("GET", "/events", 200, params={"athlete": "11"}))["events"]] == [3, 1]

    await deliver_pending(runtime)
    assert len(receiver.accepted()) == 3
    originals = {e.webhook_id for e in receiver.accepted()}
    clock.advance(60)
    replayed = await api("POST", "/events/replay", 200, json={"since": "2026-11-27T00:00:00Z", "athlete_id": "11"})
    assert replayed == {"replayed": 2}
    await deliver_pending(runtime)
    again = receiver.accepted()[3:]
    assert [e.data["replay_of"] for e in again] == [e.webhook_id for e in receiver.accepted()[:3] if e.data["athlete_id"] == 11]
    assert not {e.webhook_id for e in again} & originals
    assert (await api("GET", "/events", 200, params={"state": "delivered"}))["events"][0]["replay_of"] in originals

    assert await api("POST", "/events/retry-failed", 200) == {"retried": 0}
    assert await api("POST", "/events/1/retry", 200) == {"retried": 0}  # delivered: replay is for that
    async with runtime.sessions() as session:
        actions = (await session.execute(select(AuditEntry.action, AuditEntry.actor))).all()
    assert ("replay_events", "admin-api") in actions and ("retry_failed_events", "admin-api") in actions


@pytest.mark.parametrize("method,path,kw,code", [
    ("GET", "/events", {"params": {"state": "lost"}}, "bad_state"),
    ("GET", "/events", {"params": {"limit": "0"}}, "bad_argument"),
    ("GET", "/events", {"params": {"before": "x"}}, "bad_argument"),
    ("GET", "/events", {"params": {"athlete": "-3"}}, "bad_argument"),
    ("POST", "/events/x/retry", {}, "bad_argument"),
    ("POST", "/events/replay", {"json": {}}, "bad_argument"),
    ("POST", "/events/replay", {"json": {"since": "yesterday"}}, "bad_argument"),
    ("POST", "/events/replay", {"json": {"since": "2026-11-27T00:00:00"}}, "bad_argument"),
    ("POST", "/events/replay", {"json": {"since": "2026-11-27", "athlete_id": True}}, "bad_argument"),
    ("POST", "/events/replay", {"json": {"since": "2026-11-27", "who": 1}}, "bad_argument"),
    ("POST", "/events/replay", {"data": b"[1", "headers": {"Content-Type": "application/json"}}, "bad_argument"),
    # times that exist only before year 1 or after 9999 in UTC (once an OverflowError: a 500)
    ("POST", "/events/replay", {"json": {"since": "0001-01-01T00:00:00+01:00"}}, "bad_argument"),
    ("POST", "/events/replay", {"data": b'{"since": "2026-11-27", "since": "2026-01-01"}',
                                "headers": {"Content-Type": "application/json"}}, "bad_argument"),
    ("POST", "/events/replay", {"json": {"since": "9999-12-31T23:30:00-01:00"}}, "bad_argument"),
])
async def test_bad_input_is_a_400_that_changes_nothing(api, events_runtime, method, path, kw, code):
    await seed(events_runtime, 5)
    body = await api(method, path, 400, **kw)
    assert body["error"] == code
    assert await count(events_runtime) == 1


async def test_retrying_an_unknown_event_is_a_404(api):
    assert (await api("POST", "/events/99/retry", 404))["error"] == "not_found"


cli_env = test_cli_core.env  # the CLI's environment (a fixture)


@pytest.fixture
def events_env(cli_env, monkeypatch, receiver):
    """The CLI's environment (tests/integration/test_cli_core.py) with outbound events on."""
    monkeypatch.setenv("FITGLUE_EVENTS_URL", receiver.url)
    monkeypatch.setenv("FITGLUE_EVENTS_SECRET", EVENTS_SECRET)
    return cli_env


def test_the_cli_prints_the_same_shapes(events_env, capsys):
    assert main(["events", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"events": [], "next_before": None}
    assert main(["events", "retry", "--failed", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"retried": 0}
    assert main(["events", "replay", "--since", "2026-01-01T00:00:00Z", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"replayed": 0}
    assert main(["events", "--state", "failed", "--athlete", "7", "--limit", "5"]) == 0
    assert "no outbound events in state failed" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [
    ["events", "--state", "lost", "--json"],
    ["events", "--limit", "0", "--json"],
    ["events", "retry", "--json"],
    ["events", "retry", "3", "--failed", "--json"],
    ["events", "--limit", "3", "retry", "--failed", "--json"],
    ["events", "replay", "--json"],
    ["events", "replay", "--since", "2026-11-27T10:00", "--json"],
    ["events", "retry", "99", "--json"],
    ["events", "replay", "--since", "0001-01-01T00:00:00+01:00", "--json"],
])
def test_cli_mistakes_are_one_line_with_the_documented_status(events_env, capsys, argv):
    code = main(argv)
    out = capsys.readouterr().out
    assert code == (1 if argv[2:3] == ["99"] else 2), out
    assert set(json.loads(out)) == {"error", "message"}


def test_init_writes_a_standard_webhooks_secret(tmp_path, monkeypatch):
    from service.core.settings import load_settings

    monkeypatch.chdir(tmp_path)
    assert main(["init"]) == 0
    settings = load_settings({"FITGLUE_EVENTS_URL": "http://127.0.0.1:9/events"}, tmp_path / ".env")
    assert settings.events_secret is not None
    assert settings.events_secret.get_secret_value().startswith("whsec_")
    settings.require_events_secret()


def test_a_malformed_secret_names_the_variable_but_not_the_value(tmp_path):
    from service.core.settings import ConfigError, load_settings

    with pytest.raises(ConfigError) as info:
        load_settings({"FITGLUE_EVENTS_SECRET": "not-a-standard-secret"}, tmp_path / "none.env")
    assert info.value.names == ("FITGLUE_EVENTS_SECRET",)
    assert "not-a-standard-secret" not in str(info.value)


def test_serve_refuses_a_url_without_a_secret_naming_the_variable(events_env, monkeypatch, capsys, standin):
    monkeypatch.delenv("FITGLUE_EVENTS_SECRET")
    monkeypatch.setenv("STRAVA_CLIENT_ID", standin.config.client_id)
    monkeypatch.setenv("STRAVA_CLIENT_SECRET", standin.config.client_secret)
    monkeypatch.setenv("STRAVA_WEBHOOK_VERIFY_TOKEN", "verify")
    assert main(["serve", "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert "FITGLUE_EVENTS_SECRET" in err and len(err.strip().splitlines()) == 1


async def test_a_replay_reads_the_originals_a_chunk_at_a_time_and_replays_each_once(events_runtime, receiver,
                                                                                    monkeypatch):
    """The originals were read all at once (a month of delivered events, bodies included). Now
    REPLAY_CHUNK at a time, by id; the replays written meanwhile are never read as originals."""
    from sqlalchemy import event as sa_event

    from service.outbox import outbox_ops

    runtime = events_runtime
    for athlete in (11, 12, 11, 13, 11):
        await seed(runtime, athlete)
    await deliver_pending(runtime)
    originals = [e.webhook_id for e in receiver.accepted()]
    assert len(originals) == 5
    monkeypatch.setattr(outbox_ops, "REPLAY_CHUNK", 2)
    reads: list[int] = []

    def count_reads(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("SELECT") and "outbound_events.replay_of IS NULL" in statement:
            reads.append(1)

    sa_event.listen(runtime.engine.sync_engine, "before_cursor_execute", count_reads)
    try:
        async with runtime.write() as session:
            replayed = await outbox_ops.replay_events(session, runtime.settings, runtime.clock.now(),
                                                      runtime.clock.now().replace(year=2000))
    finally:
        sa_event.remove(runtime.engine.sync_engine, "before_cursor_execute", count_reads)
    assert replayed == 5
    assert len(reads) == 4  # chunks of 2, 2 and 1, then an empty one (before: one read of all five)
    await deliver_pending(runtime)
    assert sorted(e.data["replay_of"] for e in receiver.accepted()[5:]) == sorted(originals)  # each once


async def test_a_replay_takes_the_originals_there_were_when_it_began(events_runtime, receiver, monkeypatch):
    """Read a chunk at a time, a replay also read the originals delivered while it ran (on PostgreSQL
    each read sees what others committed): events newer than the request were sent twice, and under
    steady traffic the replay chased the newest event. It now stops at the last id there was when it
    began. The event delivered meanwhile is stood in by one written in the replay's own session."""
    from service.outbox import outbox_ops
    from service.outbox.event_types import DELIVERED

    runtime = events_runtime
    for athlete in (11, 12, 13):
        await seed(runtime, athlete)
    await deliver_pending(runtime)
    monkeypatch.setattr(outbox_ops, "REPLAY_CHUNK", 2)
    real_write, late = outbox_ops.write_event, []

    async def write_and_deliver_another(session, settings, now, *args, **kwargs):
        if not late:  # during the first chunk: an original delivered just now, after the replay began
            late.append(await real_write(session, settings, now, *args, **{**kwargs, "replay_of": None}))
            await session.execute(update(OutboundEvent).where(OutboundEvent.id == late[0]).values(state=DELIVERED))
        return await real_write(session, settings, now, *args, **kwargs)

    monkeypatch.setattr(outbox_ops, "write_event", write_and_deliver_another)
    async with runtime.write() as session:
        replayed = await outbox_ops.replay_events(session, runtime.settings, runtime.clock.now(),
                                                  runtime.clock.now().replace(year=2000))
    assert late and replayed == 3  # before: 4, the late one included
