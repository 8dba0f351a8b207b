"""service.connections.token_reads: on SQLite the read takes its own one-hop path; it must see exactly
what SQLAlchemy sees (same columns, aware UTC times, a user without a connection), and the newest
committed state."""

from __future__ import annotations

from datetime import UTC, timedelta

from service.connections.token_reads import TokenReader
from service.core.inputs import Who
from service.desk.support_desk import SupportDesk
from tests import token_support
from tests.token_support import ALICE, set_connection

client = token_support.client  # fixtures, by their names
alice = token_support.alice


async def test_both_paths_read_the_same(client, runtime, alice, clock):
    lease = clock.now() + timedelta(seconds=90, microseconds=123456)
    await set_connection(runtime, alice, refresh_lease_until=lease, last_refresh_error_kind="transient")
    await SupportDesk(runtime).issue_connect_link("bob@example.com", "test")  # a user with no connection
    own, orm = TokenReader(runtime), TokenReader(runtime)
    await orm.close()
    orm._executor = None  # SQLAlchemy's path, whatever the database
    try:
        for who in (Who(ALICE, None), Who(None, alice), Who("bob@example.com", None), Who("x@example.com", None)):
            assert await own.read(who) == await orm.read(who), who
        view = await own.read(Who(None, alice))
        assert view is not None and view.conn_id is not None
        assert await own.read(view.conn_id) == view
        assert view.refresh_lease_until == lease and view.refresh_lease_until.tzinfo == UTC
        assert view.expires_at is not None and view.expires_at.tzinfo == UTC and view.error_kind == "transient"
        assert "access_token_enc" not in repr(view)
        bob = await own.read(Who("bob@example.com", None))
        assert bob is not None and bob.status == "not_connected" and bob.access_token_enc is None
        await set_connection(runtime, alice, status="revoked")  # committed elsewhere: seen at once
        assert (await own.read(view.conn_id)).status == "revoked"
    finally:
        await own.close()
