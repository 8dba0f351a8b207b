"""Request verification: Slack's published example, and forged or stale requests into the service."""

from __future__ import annotations

import time

from slack_sdk.signature import SignatureVerifier

from tests.bot.conftest import Signed

# Slack's "Verifying requests from Slack" example (also in python-slack-sdk's own tests).
VECTOR_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
VECTOR_TIMESTAMP = "1531420618"
VECTOR_BODY = (
    "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V"
    "&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text="
    "&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN"
    "&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
)
VECTOR_SIGNATURE = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"


class FixedClock:
    def __init__(self, now: float) -> None:
        self._now = now

    def now(self) -> float:
        return self._now


def test_slack_published_signing_example() -> None:
    verifier = SignatureVerifier(VECTOR_SECRET, clock=FixedClock(int(VECTOR_TIMESTAMP) + 10))
    assert verifier.generate_signature(timestamp=VECTOR_TIMESTAMP, body=VECTOR_BODY) == VECTOR_SIGNATURE
    headers = {"x-slack-request-timestamp": VECTOR_TIMESTAMP, "x-slack-signature": VECTOR_SIGNATURE}
    assert verifier.is_valid_request(VECTOR_BODY, headers)
    assert not verifier.is_valid_request(VECTOR_BODY.replace("foobar", "foobaz"), headers)
    # Outside the five-minute window the same request is a replay.
    late = SignatureVerifier(VECTOR_SECRET, clock=FixedClock(int(VECTOR_TIMESTAMP) + 301))
    assert not late.is_valid_request(VECTOR_BODY, headers)


async def test_forged_signature_is_refused_and_nothing_happens(signed: Signed, slack) -> None:
    body = signed.command_body("diagnose alice@example.com")
    forged = Signed(signed.client, slack, secret="not-the-secret").headers(body)
    response, _ = await signed.post(body, headers=forged)
    assert response.status == 401
    unsigned, _ = await signed.post(body, headers={})
    assert unsigned.status == 401
    assert slack.calls == [] and slack.responses == []


async def test_stale_signature_is_refused(signed: Signed, slack) -> None:
    body = signed.command_body("help")
    stale = signed.headers(body, timestamp=int(time.time()) - 301)
    response, _ = await signed.post(body, headers=stale)
    assert response.status == 401
    assert slack.responses == []


async def test_tampered_body_is_refused(signed: Signed, slack) -> None:
    body = signed.command_body("help")
    headers = signed.headers(body)
    response, _ = await signed.post(body.replace("help", "link+mallory%40example.com"), headers=headers)
    assert response.status == 401
