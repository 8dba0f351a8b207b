"""The token endpoint's refresh is single-flight with the sweep: concurrent callers, the sweep, and a
second app instance on the same database (another replica) cause one Strava refresh between them.

The stand-in answers after 200 ms here, so every caller really overlaps the one refresh in flight.
The replica test runs on SQLite and, with FITGLUE_TEST_DB=postgres, on PostgreSQL (where the lease
is what keeps replicas apart); tests/e2e/test_token_replicas.py does the same with two real
`fitglue serve` processes.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from service.app.bootstrap import open_runtime
from service.app.factory import build_app
from service.desk.support_desk import SupportDesk
from tests import token_support
from tests.conftest import make_settings
from tests.token_support import (
    ALICE,
    LIFETIME_S,
    ask,
    audit_entries,
    set_connection,
)

# The fixtures this module uses, under their names.
client = token_support.client
alice = token_support.alice

CALLERS = 20


def refreshes(standin) -> int:
    """Calls to Strava's token endpoint; after the Connect every one of them is a refresh."""
    return standin.count_calls("POST", "/oauth/token")


async def test_twenty_concurrent_calls_for_an_expiring_token_cause_one_refresh(client, runtime, standin, alice,
                                                                              clock):
    clock.advance(LIFETIME_S - 120)
    standin.config.latency_s = 0.2
    before = refreshes(standin)
    answers = await asyncio.gather(*(ask(client, {"who": ALICE, "min_valid_s": 600}) for _ in range(CALLERS)))
    assert refreshes(standin) - before == 1
    assert {status for status, _, _ in answers} == {200}
    assert len({body["access_token"] for _, body, _ in answers}) == 1
    assert all(body["refreshed"] is True for _, body, _ in answers)
    assert [e.result for e in await audit_entries(runtime)] == ["refreshed"] * CALLERS


async def test_callers_and_the_sweep_together_cause_one_refresh(client, runtime, standin, alice, clock):
    clock.advance(LIFETIME_S - 120)  # due for the sweep (within the hour) and for the callers
    standin.config.latency_s = 0.2
    before = refreshes(standin)
    sweep = asyncio.ensure_future(SupportDesk(runtime).refresh_due("test"))
    answers = await asyncio.gather(*(ask(client, {"who": ALICE}) for _ in range(10)))
    results = await sweep
    assert refreshes(standin) - before == 1
    assert {status for status, _, _ in answers} == {200}
    assert len({body["access_token"] for _, body, _ in answers}) == 1
    assert sum(r.refreshed for r in results) <= 1


async def test_a_caller_waits_for_a_refresh_held_elsewhere_and_reads_its_token(client, runtime, standin, alice,
                                                                               clock):
    """Another replica holds the lease; when it stores the new token, the waiting caller hands it out."""
    clock.advance(LIFETIME_S - 120)
    await set_connection(runtime, alice, refresh_lease_until=clock.now() + timedelta(seconds=60))
    before = refreshes(standin)
    waiting = asyncio.ensure_future(ask(client, {"who": ALICE}))
    await asyncio.sleep(0.2)  # the caller is polling the row meanwhile
    assert not waiting.done()
    new_expiry = clock.now() + timedelta(seconds=LIFETIME_S)
    await set_connection(runtime, alice, access_token_enc=runtime.cipher.encrypt("token-from-the-other-replica"),
                         expires_at=new_expiry, refresh_lease_until=None)
    status, body, _ = await waiting
    assert (status, body["access_token"], body["refreshed"]) == (200, "token-from-the-other-replica", True)
    assert refreshes(standin) == before


async def test_a_lease_never_released_ends_in_503_after_the_wait(client, runtime, standin, alice, clock):
    runtime.settings = runtime.settings.replaced(token_refresh_wait_s=0.3, token_refresh_poll_ms=20)
    clock.advance(LIFETIME_S - 120)
    await set_connection(runtime, alice, refresh_lease_until=clock.now() + timedelta(seconds=90))
    before = refreshes(standin)
    status, body, headers = await ask(client, {"who": ALICE})
    assert (status, body["error"]) == (503, "strava_unavailable")
    assert 1 <= int(headers["Retry-After"]) <= 10
    assert refreshes(standin) == before
    clock.advance(91)  # the holder died: its lease runs out and the next caller refreshes
    status, body, _ = await ask(client, {"who": ALICE})
    assert (status, body["refreshed"]) == (200, True)
    assert refreshes(standin) == before + 1


async def test_two_app_instances_on_one_database_cause_one_refresh(aiohttp_client, runtime, database_url, standin,
                                                                   client, alice, clock):
    """A second replica: its own runtime (engine, sessions, flights) and app, the same database."""
    other = await open_runtime(make_settings(database_url, standin, token_api_key=runtime.settings.token_api_key
                                             .get_secret_value()), clock)
    try:
        second = await aiohttp_client(build_app(other, background=False))
        clock.advance(LIFETIME_S - 120)
        standin.config.latency_s = 0.2
        before = refreshes(standin)
        answers = await asyncio.gather(*(ask(client if n % 2 else second, {"who": ALICE}) for n in range(CALLERS)))
        assert refreshes(standin) - before == 1
        assert {status for status, _, _ in answers} == {200}, answers
        assert len({body["access_token"] for _, body, _ in answers}) == 1
    finally:
        await other.close()


async def test_a_caller_that_goes_away_does_not_cut_the_refresh_short(client, runtime, standin, alice, clock):
    """Strava may already have rotated the refresh token: the refresh must be stored all the same."""
    from service.connections.token_access import valid_access_token
    from service.connections.token_reads import TokenReader
    from service.core.inputs import Who
    from tests.token_support import refresh_left_by_its_caller

    clock.advance(LIFETIME_S - 120)
    standin.config.latency_s = 0.3
    before = refreshes(standin)
    reader = TokenReader(runtime)
    try:
        caller, flight = await refresh_left_by_its_caller(runtime, reader)
        await flight  # the refresh goes on without its caller
        assert caller.cancelled()
        standin.config.latency_s = 0
        token = await valid_access_token(runtime, reader, Who(ALICE.lower(), None), 600)
        assert token is not None and token.refreshed is False and token.access_token in standin.issued_tokens
        assert refreshes(standin) == before + 1
    finally:
        await reader.close()
