"""``/api/v3/push_subscriptions``: the app-level webhook subscription (one per application)."""

from __future__ import annotations

from aiohttp import web

from standin.faults import (
    CALLBACK_NOT_VERIFIABLE,
    RESOURCE_NOT_FOUND,
    SUBSCRIPTION_EXISTS,
    bad_request,
)
from standin.keys import STANDIN_KEY
from standin.requests import all_params

PATH = "/api/v3/push_subscriptions"
MAX_CALLBACK_URL = 255


async def _refused(request: web.Request) -> web.Response | None:
    standin = request.app[STANDIN_KEY]
    params = await all_params(request)
    refused = standin.check_client(params.get("client_id"), params.get("client_secret"))
    return None if refused is None else web.json_response(refused[1], status=refused[0])


async def view(request: web.Request) -> web.Response:
    refused = await _refused(request)
    if refused is not None:
        return refused
    subscription = request.app[STANDIN_KEY].subscription
    return web.json_response([subscription] if subscription else [])


async def create(request: web.Request) -> web.Response:
    refused = await _refused(request)
    if refused is not None:
        return refused
    standin = request.app[STANDIN_KEY]
    params = await all_params(request)
    callback_url = params.get("callback_url", "")
    if not callback_url or len(callback_url) > MAX_CALLBACK_URL:
        return web.json_response(bad_request("PushSubscription", "callback url"), status=400)
    if not params.get("verify_token"):
        return web.json_response(bad_request("PushSubscription", "verify token"), status=400)
    try:
        created = await standin.create_subscription(callback_url, params["verify_token"])
    except FileExistsError:
        return web.json_response(SUBSCRIPTION_EXISTS, status=400)
    if created is None:
        return web.json_response(CALLBACK_NOT_VERIFIABLE, status=400)
    return web.json_response(created, status=201)


async def delete(request: web.Request) -> web.Response:
    refused = await _refused(request)
    if refused is not None:
        return refused
    if not request.app[STANDIN_KEY].delete_subscription(request.match_info["subscription_id"]):
        return web.json_response(RESOURCE_NOT_FOUND, status=404)
    return web.Response(status=204)


def add_routes(app: web.Application) -> None:
    app.router.add_get(PATH, view)
    app.router.add_post(PATH, create)
    app.router.add_delete(f"{PATH}/{{subscription_id}}", delete)
