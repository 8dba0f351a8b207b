"""Bulk Connect links from Slack: the "Send Connect links to all N" button, and the run itself,
which the queue worker hands to this courier (`Runtime.courier`, set when the bot is mounted).

The run (service/desk/bulk_links.py decides who gets a link) delivers each link here:
- a workspace member gets it by direct message;
- everyone else's link goes into one CSV file shared with the asking agent alone, in their DM with
  the bot, through Slack's current upload flow: files.getUploadURLExternal, the bytes to that URL,
  files.completeUploadExternal (the steps slack_sdk's files_upload_v2 wraps, taken one at a time so a
  failure names its step; the old files.upload was retired). Never into a channel or a log.

Pacing: each Slack method gets at most its FITGLUE_SLACK_*_PER_MIN calls a minute (Slack's
per-method tiers: users.lookupByEmail allows about 50, so 1,000 users take about 20 minutes), and a
429 waits Slack's Retry-After before the same call is tried again (FITGLUE_SLACK_RATE_LIMIT_RETRIES).

Progress: the button's reply is the first of the response URL's uses; at most three updates follow
(a quarter, half and three quarters done), then the final report goes to the agent by DM. Slack
allows five uses of a response URL within 30 minutes; four are used.
"""

from __future__ import annotations

import asyncio
import csv
import io
import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from slack_bolt.async_app import AsyncAck, AsyncBoltContext, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot import render
from bot.audit import slack_actor
from bot.blocks import Reply, section
from bot.context import BotContext
from bot.outcomes import attempt, post_reply, tell
from bot.render.affected_blocks import split_bulk_value
from bot.slack_api import RATE_LIMITED, SlackCallFailed, call
from service.desk.affected import AffectedUser
from service.desk.bulk_links import CSV_HEADER, BulkRun, BulkTally
from service.desk.support_desk import SupportDesk

log = logging.getLogger(__name__)

PROGRESS_UPDATES = 3  # after the button's own reply: four response-URL uses of Slack's five


class Pacer:
    """At most `per_min()[method]` calls a minute for each method, spaced evenly; waits with `sleep`.
    The limits are read at each call, so changed settings apply to a run under way."""

    def __init__(self, per_min: Callable[[], dict[str, int]], sleep: Callable[[float], Awaitable[None]],
                 now: Callable[[], float] = time.monotonic) -> None:
        self.per_min, self.sleep, self.now = per_min, sleep, now
        self._next: dict[str, float] = {}

    async def turn(self, method: str) -> None:
        limit = self.per_min().get(method)
        if not limit:
            return
        now = self.now()
        due = self._next.get(method, now)
        if due > now:
            await self.sleep(due - now)
        self._next[method] = max(due, now) + 60.0 / limit


class SlackCourier:
    """Runs bulk link runs for the queue worker (the service's `Courier` protocol)."""

    def __init__(self, rt: Any, client: AsyncWebClient, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 now: Callable[[], float] = time.monotonic) -> None:
        self.rt, self.client, self.sleep = rt, client, sleep
        self.pacer = Pacer(self._limits, sleep, now)

    def _limits(self) -> dict[str, int]:
        settings = self.rt.settings
        return {"users.lookupByEmail": settings.slack_lookup_per_min,
                "conversations.open": settings.slack_lookup_per_min,
                "chat.postMessage": settings.slack_post_per_min}

    async def _call(self, method: str, request: Callable[[], Awaitable[Any]]) -> dict[str, Any]:
        retries = self.rt.settings.slack_rate_limit_retries
        for tried in range(retries + 1):
            await self.pacer.turn(method)
            try:
                return await call(method, request(), self.rt.settings.slack_timeout_s)
            except SlackCallFailed as exc:
                if exc.shape != RATE_LIMITED or tried == retries:
                    raise
                await self.sleep(exc.retry_after_s if exc.retry_after_s is not None else 60)
        raise AssertionError("unreachable")

    async def _member(self, email: str) -> str | None:
        try:
            answer = await self._call("users.lookupByEmail", lambda: self.client.users_lookupByEmail(email=email))
        except SlackCallFailed as exc:
            if exc.error == "users_not_found":
                return None
            raise
        found = answer.get("user")
        user: dict[str, Any] = found if isinstance(found, dict) else {}
        return None if user.get("deleted") or user.get("is_bot") or not user.get("id") else str(user["id"])

    async def _dm_channel(self, user_id: str) -> str:
        opened = await self._call("conversations.open", lambda: self.client.conversations_open(users=user_id))
        channel = opened.get("channel")
        if not isinstance(channel, dict) or not channel.get("id"):
            raise SlackCallFailed("conversations.open", "not_json", status=200)
        return str(channel["id"])

    async def _post(self, channel: str, reply: Reply) -> None:
        await self._call("chat.postMessage", lambda: self.client.chat_postMessage(
            channel=channel, unfurl_links=False, **reply.as_kwargs()))

    async def deliver(self, user: AffectedUser, issued: dict[str, Any]) -> bool:
        member = await self._member(user.email)
        if member is None:
            return False
        await self._post(await self._dm_channel(member), render.link_dm(issued))
        return True

    async def post_digest(self, channel: str, digest: dict[str, Any]) -> None:
        """The daily digest into FITGLUE_ALERT_CHANNEL; raises SlackCallFailed when it did not go out."""
        await self._post(channel, render.digest(digest))

    async def run_bulk_links(self, run_id: int) -> None:
        desk = SupportDesk(self.rt)
        run = await desk.bulk_links.run(run_id)
        if run is None:
            return
        marks: set[int] | None = None

        async def progress(tally: BulkTally) -> None:
            nonlocal marks
            if marks is None:  # a quarter, half and three quarters of the users found when the run began
                marks = {math.ceil(tally.total * k / (PROGRESS_UPDATES + 1)) for k in range(1, PROGRESS_UPDATES + 1)}
            if tally.handled in marks and tally.handled < tally.total:
                marks.discard(tally.handled)
                await self._update(run, render.bulk_progress(run.finding, tally.handled, tally.total,
                                                             tally.counts()))

        try:
            tally = await desk.bulk_links.send(run, self.deliver, progress)
        except Exception as exc:
            log.exception("bulk run %s for %s stopped", run.id, run.finding)
            await self._report(run, Reply(f"Sending Connect links for {run.finding} stopped: {type(exc).__name__}",
                                          [section(f":x: Sending Connect links for `{run.finding}` stopped "
                                                   f"unexpectedly ({type(exc).__name__}); see the service log.")]))
            return
        note = await self._share_file(run, tally)
        report = render.bulk_progress(run.finding, tally.handled, tally.total, tally.counts(), final=True,
                                      file_shared=note is None)
        if note:
            report = Reply(f"{report.text} {note}", [*report.blocks, section(f":warning: {note}")])
        await self._report(run, report)

    async def _share_file(self, run: BulkRun, tally: BulkTally) -> str | None:
        """The CSV of links for non-members, to the asking agent's DM only; a problem in words, or None."""
        if not tally.rows or not run.agent_slack_id:
            return None
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(CSV_HEADER)
        writer.writerows(tally.rows)
        try:
            await self._upload(run, await self._dm_channel(run.agent_slack_id), buffer.getvalue().encode())
        except SlackCallFailed as exc:
            log.warning("bulk run %s: the CSV for the agent could not be shared (%s)", run.id, exc.reason)
            return (f"The file with {len(tally.rows)} links for users outside this workspace could not be shared "
                    f"({exc.reason}). `fitglue affected {run.finding} --send-links --yes --force --out FILE` "
                    "issues them again.")
        return None

    async def _upload(self, run: BulkRun, channel: str, data: bytes) -> None:
        """Slack's upload flow, step by step (what slack_sdk's files_upload_v2 does), so a failure names
        its step: an upload URL, the bytes to it, then completing the upload into `channel` alone."""
        timeout_s, name = self.rt.settings.slack_timeout_s, f"connect-links-{run.finding}-{run.id}.csv"
        got = await call("files.getUploadURLExternal",
                         self.client.files_getUploadURLExternal(filename=name, length=len(data)), timeout_s)
        url, file_id = got.get("upload_url"), got.get("file_id")
        if not isinstance(url, str) or not isinstance(file_id, str):
            raise SlackCallFailed("files.getUploadURLExternal", "not_json", status=200)
        try:
            # Not followed: a 307 would resend the links to wherever Location points.
            async with self.rt.http.post(url, data=data, timeout=aiohttp.ClientTimeout(total=timeout_s),
                                         allow_redirects=False) as answer:
                if answer.status != 200:
                    raise SlackCallFailed("the file upload", "server_error" if answer.status >= 500 else "refused",
                                          error=f"HTTP {answer.status}", status=answer.status)
        except (aiohttp.ClientError, OSError) as exc:
            raise SlackCallFailed("the file upload", "unreachable", cause=type(exc).__name__) from None
        await call("files.completeUploadExternal", self.client.files_completeUploadExternal(
            files=[{"id": file_id, "title": f"Connect links for {run.finding} (users outside this workspace)"}],
            channel_id=channel, initial_comment="Connect links for the users who are not in this workspace: only "
                                                "you can see this file. Send each person their own link."), timeout_s)

    async def _report(self, run: BulkRun, reply: Reply) -> None:
        if not run.agent_slack_id:
            return
        try:
            await self._post(await self._dm_channel(run.agent_slack_id), reply)
        except SlackCallFailed as exc:
            log.warning("bulk run %s: the final report could not be sent (%s)", run.id, exc.reason)

    async def _update(self, run: BulkRun, reply: Reply) -> None:
        if run.response_url:  # a run started from the command line has none
            await post_reply(self.rt, run.response_url, reply, f"bulk run {run.id} progress update",
                             replace_original=True)


def bulk_button_listener(bot: BotContext):  # noqa: ANN201 - a Bolt listener
    """"Send Connect links to all N": queue the run (behind the access check and Slack's confirm)."""

    async def on_click(ack: AsyncAck, action: dict[str, Any], body: dict[str, Any], respond: AsyncRespond,
                       context: AsyncBoltContext) -> None:
        await ack()
        finding, since = split_bulk_value(str(action.get("value") or ""))
        user_id = context.user_id or ""

        async def start() -> Reply:
            run = await bot.desk.bulk_links.start(finding, since, slack_actor(user_id), agent_slack_id=user_id,
                                                  response_url=str(body.get("response_url") or "") or None)
            return render.bulk_progress(run.finding, 0, run.total, {"sent": 0, "skipped": 0, "failed": 0})

        reply, ok = await attempt(start(), "button send_links_bulk")
        await tell(bot.rt, respond, reply, "button send_links_bulk", replace_original=ok)

    return on_click
