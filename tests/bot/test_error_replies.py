"""The bot tells each SupportError code in the one error table's words (service/desk/error_table.py):
the table's fixed wording where the message may name internals, else the desk's own message.
(Admin API and CLI: tests/integration/test_error_table_adapters.py.)"""

from __future__ import annotations

import logging
from typing import Any

from service.desk.error_table import ERRORS, SupportError
from service.desk.support_desk import SupportDesk
from tests.bot.conftest import Signed
from tests.bot.slack_standin import SlackStandin


def message_of(code: str) -> str:
    return f"the {code} message, with the database at /srv/fitglue.db"


async def test_a_slash_command_tells_every_code_as_the_table_says(signed: Signed, slack: SlackStandin,
                                                                 monkeypatch: Any, caplog: Any) -> None:
    caplog.set_level(logging.INFO)
    for n, (code, row) in enumerate(ERRORS.items(), start=1):
        async def diagnose(self: SupportDesk, who: str, code: str = code) -> Any:
            raise SupportError(code, message_of(code))

        monkeypatch.setattr(SupportDesk, "diagnose", diagnose)
        response, _ = await signed.command("diagnose alice@example.com", response=f"r{n}")
        assert response.status == 200
        reply = (await slack.wait_for_responses(n))[-1]
        assert reply["text"] == f"That didn't work: {row.public or message_of(code)}", code
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_a_button_tells_the_desk_s_failure_in_the_same_words(signed: Signed, slack: SlackStandin,
                                                                  monkeypatch: Any) -> None:
    async def refresh_now(self: SupportDesk, email: str, actor: str) -> Any:
        raise SupportError("database", message_of("database"))

    monkeypatch.setattr(SupportDesk, "refresh_now", refresh_now)
    await signed.click("refresh_token", "alice@example.com")
    reply = (await slack.wait_for_responses(1))[0]
    assert reply["text"] == f"That didn't work: {ERRORS['database'].public}"
