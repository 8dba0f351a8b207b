"""HTTP mode: Bolt on the service's own aiohttp application at POST /slack/events.

`slack_bolt.adapter.aiohttp` only offers the two converters; this is the handler around them.
One route serves slash commands, button clicks and events; Bolt verifies each signature
(5-minute window) and answers 401 when it is wrong.
"""

from __future__ import annotations

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp

EVENTS_PATH = "/slack/events"


def mount_http(app: web.Application, bolt: AsyncApp) -> None:
    async def slack_events(request: web.Request) -> web.StreamResponse:
        return await to_aiohttp_response(await bolt.async_dispatch(await to_bolt_request(request)))

    app.router.add_post(EVENTS_PATH, slack_events)
