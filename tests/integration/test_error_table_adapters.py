"""Each adapter answers each SupportError code as the one error table says (service/desk/error_table.py):
the admin API with the row's HTTP status and `{"error", "message"}`, the CLI with the row's exit status.
(Slack: tests/bot/test_error_replies.py.) The desk is made to fail with every code in turn; then the
real desk is made to meet failures from below it, which its edge must translate."""

# ruff: noqa: F811 - `env` is a fixture shared with test_cli_diagnose

from __future__ import annotations

import json
import logging

import pytest

from service.app.factory import build_app
from service.desk import support_desk
from service.desk.boundary import as_support_error
from service.desk.error_table import ERRORS, SupportError
from service.desk.support_desk import SupportDesk
from tests.integration.test_cli_diagnose import ALICE, env, fitglue  # noqa: F401 - fixtures
from tests.unit.test_error_table import LOWER_FAILURES

TOKEN = "admin-token-for-error-table-tests"


def message_of(code: str) -> str:
    return f"the {code} message, with the database at /srv/fitglue.db"


@pytest.fixture
def desk_fails(monkeypatch):
    """`desk_fails(code)`: SupportDesk.diagnose raises SupportError(code) from now on."""

    def fail_with(code: str) -> None:
        async def diagnose(self, who):
            raise SupportError(code, message_of(code))

        monkeypatch.setattr(SupportDesk, "diagnose", diagnose)

    return fail_with


@pytest.fixture
async def admin(aiohttp_client, runtime):
    runtime.settings = runtime.settings.replaced(admin_token=TOKEN)
    client = await aiohttp_client(build_app(runtime, background=False))

    async def diagnosis() -> tuple[int, dict]:
        response = await client.get(f"/admin/api/users/{ALICE}/diagnosis",
                                    headers={"Authorization": f"Bearer {TOKEN}"})
        return response.status, await response.json()

    return diagnosis


async def test_the_admin_api_answers_every_code_as_the_table_says(admin, desk_fails, caplog):
    caplog.set_level(logging.INFO)
    for code, row in ERRORS.items():
        desk_fails(code)
        status, body = await admin()
        assert (status, body) == (row.http_status, {"error": code, "message": row.public or message_of(code)}), code
    assert "/srv/fitglue.db" not in json.dumps(body)  # "internal" and "database" use the table's own words
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_the_cli_exits_with_every_code_s_status(env, desk_fails, capsys):
    for code, row in ERRORS.items():
        desk_fails(code)
        exit_status = await fitglue("diagnose", ALICE, "--json")
        out = capsys.readouterr().out
        assert (exit_status, json.loads(out)) == (row.exit_code, {"error": code, "message": message_of(code)}), code


@pytest.mark.parametrize(("failure", "code"), LOWER_FAILURES, ids=lambda v: type(v).__name__ if not isinstance(v, str) else v)
async def test_what_fails_below_the_real_desk_reaches_the_admin_api_as_its_code(aiohttp_client, runtime, monkeypatch,
                                                                                 failure, code):
    async def list_entries(*args, **kwargs):
        raise failure

    monkeypatch.setattr(support_desk, "list_entries", list_entries)
    runtime.settings = runtime.settings.replaced(admin_token=TOKEN)
    client = await aiohttp_client(build_app(runtime, background=False))
    response = await client.get("/admin/api/audit", headers={"Authorization": f"Bearer {TOKEN}"})
    body = await response.json()
    assert (response.status, body["error"]) == (ERRORS[code].http_status, code)
    assert body["message"] == (ERRORS[code].public or str(as_support_error(failure, runtime.settings.database_url)))
