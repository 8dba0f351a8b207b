"""Webhook events are processed a batch at a time (issue 11): one read per batch, one transaction to
settle it, the batch's Strava calls counted together; events about the same object still in order."""

from __future__ import annotations

import pytest
from sqlalchemy import event as sa_event

from service.background.job_handlers import make_worker, run_pending
from service.background.webhooks.unconfirmed import spend_unconfirmed_calls
from service.queue.failures import WaitUntil
from service.ratelimit.batch_budget import counted_together
from tests.webhook_support import all_events, all_jobs, connect_directly, subscribed_service


@pytest.fixture
async def client(aiohttp_client, runtime):
    return await subscribed_service(aiohttp_client, runtime)


class Statements:
    """Counts the SQL statements and commits the runtime's engine sees."""

    def __init__(self, runtime) -> None:
        self.statements = self.commits = 0
        engine = runtime.engine.sync_engine
        sa_event.listen(engine, "before_cursor_execute", self._statement)
        sa_event.listen(engine, "commit", self._commit)

    def _statement(self, *args) -> None:
        self.statements += 1

    def _commit(self, *args) -> None:
        self.commits += 1


async def test_a_batch_of_events_costs_a_few_transactions_not_several_per_event(client, runtime, standin):
    runtime.settings = runtime.settings.replaced(unconfirmed_calls_per_window=100)
    athletes = [await connect_directly(runtime, standin, f"a{n}@example.com") for n in range(4)]
    for n in range(40):
        await standin.create_activity_and_notify(athletes[n % 4], name=f"Run {n}")
    await standin.wait_for_deliveries()
    counted = Statements(runtime)
    assert await make_worker(runtime, concurrency=8).run_pending() == 40
    assert {e.state for e in await all_events(runtime)} == {"processed"}
    assert {j.state for j in await all_jobs(runtime)} == {"done"}
    # Call by call this was ~8 statements and 5 commits per event (320 and 200 for 40 events).
    assert counted.commits <= 8, counted.commits
    assert counted.statements <= 40, counted.statements


async def test_the_budget_counts_a_batchs_calls_once_and_its_headers(client, runtime, standin):
    athlete = await connect_directly(runtime, standin)
    for n in range(10):  # the per-athlete cap on unconfirmed calls
        await standin.create_activity_and_notify(athlete, name=f"Ride {n}")
    await standin.wait_for_deliveries()
    await run_pending(runtime)
    read = (await runtime.ledger.snapshot())["read"]
    calls = standin.count_calls("GET", "/api/v3/activities/")
    assert calls == 10
    assert read.counted_15min == 10 and read.usage_15min == 10  # counted before, as Strava reported after


async def test_calls_a_batch_did_not_make_are_uncounted(runtime):
    ledger = runtime.ledger
    async with counted_together(ledger, 5):
        assert (await ledger.snapshot())["read"].counted_15min == 5  # counted up front
        await ledger.before_call("/activities/1", False)  # one made (prepaid: no second count)
        await ledger.before_call("/activities/2", True)  # interactive: never prepaid, counted alone
    assert (await ledger.snapshot())["read"].counted_15min == 2


async def test_events_about_one_activity_in_one_batch_are_checked_in_order(client, runtime, standin):
    athlete = await connect_directly(runtime, standin)
    activity = await standin.create_activity_and_notify(athlete)
    # A delete of the same activity arrives before the create was processed; the activity still
    # exists at Strava, so the delete must be checked against the summary the create stores.
    await standin.push_event(standin.event("delete", "activity", activity, athlete, {}))
    await run_pending(runtime)
    create, delete = await all_events(runtime)
    assert (create.aspect_type, create.state) == ("create", "processed")
    assert (delete.state, delete.error) == ("ignored", "delete not confirmed: Strava still shows this activity to its athlete")


async def test_batch_spending_keeps_both_caps(runtime):
    runtime.settings = runtime.settings.replaced(unconfirmed_calls_per_athlete=2, unconfirmed_calls_per_window=3)
    answers = await spend_unconfirmed_calls(runtime, [11, 11, 11, 12, 12, 13])
    assert [a is None for a in answers] == [True, True, False, True, False, False]
    assert all(isinstance(a, WaitUntil) for a in answers if a is not None)
    assert "FITGLUE_UNCONFIRMED_CALLS_PER_ATHLETE" in answers[2].reason
    assert "FITGLUE_UNCONFIRMED_CALLS_PER_WINDOW" in answers[4].reason
    # the next batch in the same window finds the counts the first one left
    assert [a is None for a in await spend_unconfirmed_calls(runtime, [14])] == [False]
