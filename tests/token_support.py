"""Shared by the access-token endpoint's tests: the key, a client with the API on, a connected user."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import select, update

from service.app.factory import build_app
from service.core.audit_batch import AuditBatch
from service.db.models import AuditEntry, StravaConnection, User
from service.desk.support_desk import SupportDesk
from service.web.token_api import PATH
from tests.flows import connect

ALICE = "alice@example.com"
KEY = "token-api-key-for-tests-0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}
LIFETIME_S = 6 * 3600  # the stand-in's access tokens, as Strava's


def enable(runtime: Any, key: str | None = KEY) -> None:
    runtime.settings = runtime.settings.replaced(token_api_key=key)


@pytest.fixture
async def client(aiohttp_client: Any, runtime: Any) -> Any:
    """The app (no background work) with the token API on; import it into a test module to use it."""
    enable(runtime)
    return await aiohttp_client(build_app(runtime, background=False))


@pytest.fixture
async def alice(client: Any, runtime: Any) -> int:
    """alice@example.com, connected; her athlete id."""
    return await connect_user(client, runtime, ALICE)


async def connect_user(client: Any, runtime: Any, email: str = "alice@example.com", **decision: Any) -> int:
    """A user through the whole Connect flow against the stand-in; returns their athlete id."""
    url = (await SupportDesk(runtime).issue_connect_link(email, "test")).url
    status, html = await connect(client, url, **decision)
    assert status == 200, html
    while runtime._tasks:  # the webhook check a Connect starts in the background
        await asyncio.gather(*list(runtime._tasks), return_exceptions=True)
    async with runtime.sessions() as session:
        return (await session.execute(select(StravaConnection.athlete_id).join(User)
                                      .where(User.email == email))).scalar_one()


async def ask(client: Any, body: Any = None, *, headers: dict[str, str] | None = None,
              raw: bytes | None = None) -> tuple[int, Any, Any]:
    """POST the endpoint; (status, JSON body, headers). Every answer must be no-store JSON."""
    kwargs: dict[str, Any] = {"data": raw} if raw is not None else {"json": body}
    response = await client.post(PATH, headers=AUTH if headers is None else headers, **kwargs)
    assert response.headers.get("Cache-Control") == "no-store", (response.status, response.headers)
    return response.status, await response.json(), response.headers


async def audit_entries(runtime: Any) -> list[AuditEntry]:
    await runtime.part(AuditBatch).flush()
    while runtime._tasks:
        await asyncio.gather(*list(runtime._tasks), return_exceptions=True)
    async with runtime.sessions() as session:
        return list((await session.execute(select(AuditEntry).where(AuditEntry.actor == "token-api")
                                           .order_by(AuditEntry.id))).scalars())


async def set_connection(runtime: Any, athlete_id: int, **values: Any) -> None:
    async with runtime.sessions() as session, session.begin():
        await session.execute(update(StravaConnection).where(StravaConnection.athlete_id == athlete_id)
                              .values(**values))


async def refresh_left_by_its_caller(runtime: Any, reader: Any, who: str = ALICE) -> tuple[Any, Any]:
    """A token call for `who` that starts a refresh (the stand-in must be slow enough for it to be in
    flight) and is then cancelled: (the cancelled caller, the refresh flight it left running)."""
    from service.connections.token_access import RefreshFlights, valid_access_token
    from service.core.inputs import Who

    caller = asyncio.ensure_future(valid_access_token(runtime, reader, Who(who.lower(), None), 600))
    flights = runtime.part(RefreshFlights).running
    for _ in range(300):  # until the caller has started the refresh
        if flights:
            break
        await asyncio.sleep(0.01)
    [flight] = flights.values()
    caller.cancel()
    return caller, flight
