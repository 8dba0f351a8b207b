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


@pytest.mark.parametrize("email", ["=cmd@example.com", "+sum@example.com", "-x@example.com"])
async def test_an_address_a_spreadsheet_would_run_as_a_formula_is_written_as_text(revoked, runtime, clock, email,
                                                                                   capsys):
    """CSV injection (OWASP): the operator opens the file in a spreadsheet; a cell starting with = + - @ is a
    formula there, so it gets a leading quote and stays text."""
    from service.core.inputs import is_email

    assert is_email(email)  # an address FitGlue accepts, so it can reach the file
    await _set(runtime, email, status=ConnectionStatus.REVOKED, status_changed_at=clock.now())
    assert await fitglue("affected", "revoked", "--send-links", "--yes", "--out", "links.csv", "--json") == 0
    capsys.readouterr()
    cells = [row["email"] for row in csv.DictReader((revoked / "links.csv").open())]
    assert f"'{email}" in cells
    assert not any(cell.startswith(("=", "+", "-", "@")) for cell in cells)


async def test_a_run_whose_process_was_killed_frees_its_finding_after_the_stale_window(revoked, runtime, clock):
    """A CLI run killed with SIGKILL never clears its `active_key`; once it has not moved for
    FITGLUE_BULK_RUN_STALE_S the next start ends it (failed, "abandoned") instead of refusing for ever."""
    runtime.settings = runtime.settings.replaced(bulk_run_stale_s=600)
    desk = SupportDesk(runtime)
    killed = await desk.bulk_links.start("revoked", None, "cli:killed", queue=False)  # and then nothing more
    clock.advance(599)
    with pytest.raises(SupportError) as busy:  # still inside the window: it may just be slow
        await desk.bulk_links.start("revoked", None, "cli:two", queue=False)
    assert busy.value.code == "busy"
    clock.advance(2)
    second = await desk.bulk_links.start("revoked", None, "cli:two", queue=False)
    assert second.id != killed.id
    async with runtime.sessions() as session:
        old = await session.get(BulkLinkRun, killed.id)
        assert (old.state, old.active_key) == ("failed", None) and "abandoned" in old.error


async def test_a_run_that_keeps_moving_is_never_taken_for_abandoned(revoked, runtime, clock):
    runtime.settings = runtime.settings.replaced(bulk_run_stale_s=600)
    desk = SupportDesk(runtime)
    run = await desk.bulk_links.start("revoked", None, "cli:slow", queue=False)
    refused = []

    async def slow(user, issued) -> bool:
        clock.advance(500)  # each user takes most of the window, but the run keeps moving
        with pytest.raises(SupportError) as busy:
            await desk.bulk_links.start("revoked", None, "cli:two", queue=False)
        refused.append(busy.value.code)
        return False

    async def nothing(tally) -> None:
        return None

    tally = await desk.bulk_links.send(run, slow, nothing)
    assert tally.sent == 3 and refused == ["busy"] * 3
