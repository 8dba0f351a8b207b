"""Security scan: after a busy session (Connect flow, refreshes, Slack commands and buttons, admin
API, outbound events, the access-token API), not one Strava token the stand-in issued, nor the
client secret, the events secret, the admin token or the token API key, appears in the logs, the
pages, the Slack payloads, the admin API's answers, the audit log, the metrics, the outbound events'
bodies and headers, or the raw database files. The token API's own 200 answers are the one place a
token may go (that is what it is for): they are not in the haystack."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from service.background.job_handlers import deliver_pending
from service.core.audit_batch import AuditBatch
from service.desk.support_desk import SupportDesk
from service.web.token_api import PATH as TOKEN_PATH
from standin.event_receiver import start_event_receiver
from tests.bot.conftest import connected_user
from tests.events.conftest import EVENTS_SECRET
from tests.flows import link_path

ADMIN = "scan-admin-token-0123456789"
TOKEN_API_KEY = "scan-token-api-key-0123456789"


async def call_token_api(service, email: str) -> list[str]:
    """Token API calls of every kind; the error answers (never a token) for the haystack."""
    answers, handed_out = [], []
    for body, key in (({"who": email, "min_valid_s": 3600}, TOKEN_API_KEY),  # 30 min left: refreshed first
                      ({"who": email}, TOKEN_API_KEY), ({"who": "nobody@example.com"}, TOKEN_API_KEY),
                      ({"who": email}, "wrong-key"), ({"who": [email]}, TOKEN_API_KEY)):
        response = await service.post(TOKEN_PATH, json=body, headers={"Authorization": f"Bearer {key}"})
        (handed_out if response.status == 200 else answers).append(await response.text())
    assert len(handed_out) == 2
    return answers


async def test_no_token_or_secret_leaks_anywhere(service, signed, slack, bot_runtime, standin, clock, caplog,
                                                 database_url):
    caplog.set_level(logging.DEBUG)
    receiver, receiver_runner, events_url = await start_event_receiver(EVENTS_SECRET)
    bot_runtime.settings = bot_runtime.settings.replaced(admin_token=ADMIN, token_api_key=TOKEN_API_KEY,
                                                         events_url=events_url, events_secret=EVENTS_SECRET)
    seen: list[str] = []

    email = await connected_user(service, bot_runtime, "scan@example.com")
    partial = await connected_user(service, bot_runtime, "partial@example.com",
                                   granted=["read", "activity:read_all"])
    link = await SupportDesk(bot_runtime).issue_connect_link("fresh@example.com", "scan")
    seen.append(await (await service.get(link_path(link.url))).text())

    clock.advance(5 * 3600 + 120)  # tokens due: refreshes rotate them
    for command in (f"diagnose {email}", f"diagnose {partial}", "ratelimit", "webhook", f"link {email}",
                    f"refresh {email}", "help"):
        response, _ = await signed.command(command)
        seen.append(await response.text())
    for action, value in (("refresh_token", email), ("send_connect_link", partial)):
        response, _ = await signed.click(action, value)
        seen.append(await response.text())
    await slack.wait_for_responses(8, timeout=10)

    headers = {"Authorization": f"Bearer {ADMIN}"}
    for path in (f"/admin/api/users/{email}/diagnosis", "/admin/api/jobs", "/admin/api/audit",
                 "/admin/api/rate-limit", "/admin/api/webhook"):
        seen.append(await (await service.get(path, headers=headers)).text())
    seen.append(await (await service.post(f"/admin/api/users/{email}/refresh", headers=headers)).text())
    seen.append(await (await service.get("/admin/api/events", headers=headers)).text())
    clock.advance(6 * 3600 - 1800)  # half an hour left: the token API refreshes before answering
    seen.extend(await call_token_api(service, email))
    await bot_runtime.part(AuditBatch).flush()
    seen.append(await (await service.get("/admin/api/audit?limit=500", headers=headers)).text())
    seen.append(await (await service.get("/metrics")).text())
    await deliver_pending(bot_runtime)
    await receiver_runner.cleanup()
    assert len(receiver.accepted()) >= 2  # the two connects, at least, were announced
    seen.extend(json.dumps(event.body) + event.webhook_id + event.webhook_timestamp for event in receiver.received)

    seen.append(caplog.text)
    seen.extend(json.dumps(call.params) for call in slack.calls)
    seen.extend(json.dumps(body) for body in slack.responses)
    haystack = "\n".join(seen)
    raw = b""
    if database_url.startswith("sqlite"):
        db_file = Path(database_url.split("///", 1)[1])
        raw = b"".join(p.read_bytes() for p in db_file.parent.glob(db_file.name + "*"))

    tokens = standin.issued_tokens
    assert len(tokens) >= 6  # two connects plus rotated refreshes really happened
    secrets = {*tokens, standin.config.client_secret, bot_runtime.settings.secret_key.get_secret_value(),
               bot_runtime.settings.slack_signing_secret.get_secret_value(), EVENTS_SECRET,
               EVENTS_SECRET.removeprefix("whsec_"), ADMIN, TOKEN_API_KEY}
    for secret in secrets:
        assert secret not in haystack, "a secret leaked into logs, pages or Slack"
        assert secret.encode() not in raw, "a secret is stored in clear in the database file"
