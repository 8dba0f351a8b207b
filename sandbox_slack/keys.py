"""The application key under which the local Slack lives."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from sandbox_slack.app import LocalSlack

LOCAL_SLACK: web.AppKey[LocalSlack] = web.AppKey("local_slack")
