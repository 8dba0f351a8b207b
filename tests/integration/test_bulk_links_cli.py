"""`fitglue affected FINDING --send-links --yes [--force] --out FILE`: in the CLI's own process."""

from __future__ import annotations

import asyncio
import csv
import json
import os
import stat

import pytest
from sqlalchemy import select

from service.app.cli import main
from service.db.models import AuditEntry, BulkLinkRun
from service.desk.support_desk import SupportDesk, SupportError
from tests.integration.test_affected import _set
from troubleshooting.vocabulary import ConnectionStatus

USERS = ["ann@example.com", "ben@example.com", "cid@example.com"]


@pytest.fixture
async def revoked(runtime, clock, monkeypatch, tmp_path):
    for email in USERS:
        await _set(runtime, email, status=ConnectionStatus.REVOKED, status_changed_at=clock.now())
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FITGLUE_DATABASE_URL", runtime.settings.database_url)
    monkeypatch.setenv("FITGLUE_SECRET_KEY", "test-secret-key-0123456789abcdef")
    return tmp_path


async def fitglue(*argv: str) -> int:
    return await asyncio.to_thread(main, list(argv))


async def test_send_links_needs_yes_and_a_new_out_file(revoked, capsys):
    assert await fitglue("affected", "revoked", "--send-links", "--out", "x.csv") == 2
    assert "--yes" in capsys.readouterr().err
    assert await fitglue("affected", "revoked", "--send-links", "--yes") == 2
    assert "--out" in capsys.readouterr().err
    (revoked / "old.csv").write_text("keep")
    assert await fitglue("affected", "revoked", "--send-links", "--yes", "--out", "old.csv") == 2
    assert (revoked / "old.csv").read_text() == "keep"
    assert await fitglue("affected", "revoked", "--yes") == 2
    assert "only apply with --send-links" in capsys.readouterr().err
    assert await fitglue("affected", "webhook_silent", "--send-links", "--yes", "--out", "y.csv", "--json") == 2
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["error"] == "bad_argument"


async def test_each_user_gets_a_link_in_a_private_file_once_unless_forced(revoked, runtime, capsys):
    assert await fitglue("affected", "revoked", "--send-links", "--yes", "--out", "links.csv", "--json") == 0
    counts = json.loads(capsys.readouterr().out)
    assert (counts["sent"], counts["skipped"], counts["failed"], counts["to_file"]) == (3, 0, 0, 3)
    path = revoked / "links.csv"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    rows = list(csv.DictReader(path.open()))
    assert sorted(r["email"] for r in rows) == USERS
    assert all("/connect/strava?t=" in r["connect_link"] for r in rows)
    async with runtime.sessions() as session:
        audit = (await session.execute(select(AuditEntry).where(AuditEntry.action == "issue_connect_link"))
                 ).scalars().all()
        runs = (await session.execute(select(BulkLinkRun))).scalars().all()
    assert sorted(a.target for a in audit) == USERS  # one audit entry per link
    assert [(r.state, r.sent, r.active_key) for r in runs] == [("done", 3, None)]
    assert all("t=" not in (a.detail or "") for a in audit)

    # Again within the links' lifetime: everyone holds a live link.
    assert await fitglue("affected", "revoked", "--send-links", "--yes", "--out", "again.csv", "--json") == 0
    assert json.loads(capsys.readouterr().out)["skipped"] == 3
    assert list(csv.reader((revoked / "again.csv").open())) == [["email", "athlete_id", "connect_link", "expires_at"]]
    assert await fitglue("affected", "revoked", "--send-links", "--yes", "--force", "--out", "forced.csv",
                         "--json") == 0
    assert json.loads(capsys.readouterr().out)["sent"] == 3


async def test_a_user_fixed_meanwhile_is_skipped_and_one_run_per_finding_is_active(revoked, runtime, clock):
    desk = SupportDesk(runtime)
    run = await desk.bulk_links.start("revoked", None, "cli:one", queue=False)
    with pytest.raises(SupportError) as busy:
        await desk.bulk_links.start("revoked", None, "cli:two", queue=False)
    assert busy.value.code == "busy" and f"run {run.id}" in str(busy.value)
    await desk.bulk_links.start("needs_reauth", None, "cli:two", queue=False)  # another finding is free

    async def fix_ben_first(user, issued) -> bool:
        await _set(runtime, "ben@example.com", status=ConnectionStatus.CONNECTED)
        return False

    async def nothing(tally) -> None:
        return None

    tally = await desk.bulk_links.send(run, fix_ben_first, nothing)
    assert (tally.sent, tally.skipped) == (2, 1)
    await desk.bulk_links.start("revoked", None, "cli:two", queue=False)  # free again once done


async def test_an_out_file_that_cannot_be_made_starts_no_run(revoked, runtime, capsys):
    """`--out` in a folder that does not exist: a plain usage error, and no run is left "under way" (it
    was, forever: every later bulk run for the finding, from the CLI or Slack, was refused as busy)."""
    assert await fitglue("affected", "revoked", "--send-links", "--yes", "--out", "no/such/dir/x.csv") == 2
    err = capsys.readouterr().err
    assert "no/such/dir/x.csv" in err and "Traceback" not in err and "FileNotFoundError" not in err
    async with runtime.sessions() as session:
        assert (await session.execute(select(BulkLinkRun))).scalars().all() == []
    # A run refused for another reason leaves no empty file behind either.
    assert await fitglue("affected", "webhook_silent", "--send-links", "--yes", "--out", "y.csv") == 2
    assert not (revoked / "y.csv").exists()
    assert await fitglue("affected", "revoked", "--send-links", "--yes", "--out", "links.csv") == 0
