"""Storing what successful refreshes brought back (`service.connections.refresh`), in one transaction.

A connection takes its new tokens only while it is still connected: one disconnected, revoked or
erased while Strava was answering has forgotten its tokens for good, and must not get them back
(the lease is simply given back).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update

from service.connections import history_log
from service.connections.refresh_events import announce_recovered
from service.core.runtime import Runtime
from service.db.models import StravaConnection
from service.strava import TokenGrant
from troubleshooting.vocabulary import ConnectionStatus

CONNECTED = StravaConnection.status == ConnectionStatus.CONNECTED


async def store_grants(rt: Runtime, grants: Sequence[tuple[int, int, TokenGrant]], now: datetime) -> dict[int, str]:
    """Store each connection's new grant (connection id, user id, grant), release its lease and note the
    refresh in the user's history; the status of each afterwards (one deleted meanwhile is missing)."""
    ids = [conn_id for conn_id, _, _ in grants]
    # Encrypt outside the write transaction; the rotated refresh token is stored by the same
    # statement that releases the lease.
    rows = [{"id": conn_id, "access_token_enc": rt.cipher.encrypt(grant.access_token),
             "refresh_token_enc": rt.cipher.encrypt(grant.refresh_token), "expires_at": grant.expires_at,
             "last_refresh_at": now, "refresh_failures": 0, "last_refresh_error": None,
             "last_refresh_error_kind": None, "next_refresh_at": None, "refresh_lease_until": None,
             "refresh_failing_since": None, "updated_at": now} for conn_id, _, grant in grants]
    async with rt.write() as session:
        await announce_recovered(session, rt, ids, now)
        await session.execute(update(StravaConnection).where(CONNECTED)
                              .execution_options(synchronize_session=None), rows)
        await session.execute(update(StravaConnection).where(StravaConnection.id.in_(ids))
                              .values(refresh_lease_until=None))
        statuses: dict[int, str] = dict((await session.execute(select(StravaConnection.id, StravaConnection.status)
                                                               .where(StravaConnection.id.in_(ids)))).all())
        await history_log.record_refreshes_ok(
            session, (user_id for conn_id, user_id, _ in grants if statuses.get(conn_id) == ConnectionStatus.CONNECTED), now)
        return statuses
