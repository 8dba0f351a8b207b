"""Every HTTP route of the service, in one table: (method, path, handler).

`service.app.factory.build_app` registers exactly these (plus the Slack bot's `/slack/events`,
which the wiring mounts when the bot runs over HTTP). The admin API's own routes live beside their
handlers (`admin.ROUTES`, relative to `/admin/api`, with what openapi.json says of each) and are
listed here under that prefix.
"""

from __future__ import annotations

from service.web import admin, connect_pages, health, index_page, prometheus, strava_webhook, token_api
from service.web.admin_openapi import Handler

ROUTES: list[tuple[str, str, Handler]] = [
    ("GET", "/", index_page.index),
    ("GET", "/healthz", health.healthz),
    ("GET", "/readyz", health.readyz),
    ("GET", "/metrics", prometheus.metrics),
    ("GET", connect_pages.PAGE_PATH, connect_pages.connect_page),
    ("POST", f"{connect_pages.PAGE_PATH}/authorize", connect_pages.start_authorize),
    ("GET", "/oauth/strava/callback", connect_pages.oauth_callback),
    ("GET", strava_webhook.PATH, strava_webhook.validate_subscription),
    ("POST", strava_webhook.PATH, strava_webhook.receive_event),
    ("POST", token_api.PATH, token_api.issue_token),
    *((route.method, admin.PREFIX + route.path, route.handler) for route in admin.ROUTES),
]
