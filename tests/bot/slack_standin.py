"""A local Slack: the Web API methods the bot calls (`/api/{method}`) and response URLs
(`/respond/{id}`), each recording what it was sent. Canned answers, no real Slack.

Any method can be told to fail in one of the shapes real Slack (or a proxy in front of it) answers
with: `standin.shapes["chat.postMessage"] = "not_json"`; see FAILURE_SHAPES.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

RETRY_AFTER_S = 30

# How a Web API call can go wrong, as seen on the wire.
FAILURE_SHAPES: dict[str, str] = {
    "ok_false": "200 with {ok: false, error: ...}",
    "not_json": "405 text/plain from a proxy (slack_sdk hands back a str)",
    "html_error": "403 text/html from a proxy",
    "broken_json": "200 application/json whose body does not parse",
    "server_error": "503 text/html from Slack's edge",
    "rate_limited": f"429 ratelimited with Retry-After: {RETRY_AFTER_S}",
    "timeout": "no answer until the test ends",
}


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    token: str | None


@dataclass
class SlackStandin:
    members: dict[str, str] = field(default_factory=dict)  # e-mail -> user id
    groups: dict[str, list[str]] = field(default_factory=dict)  # S… -> member ids
    failing: dict[str, str] = field(default_factory=dict)  # method -> error to answer
    shapes: dict[str, str] = field(default_factory=dict)  # method -> a FAILURE_SHAPES key to answer in
    calls: list[Call] = field(default_factory=list)
    responses: list[dict[str, Any]] = field(default_factory=list)  # posts to response_url
    expired_responses: set[str] = field(default_factory=set)  # response_url names answering 404 expired_url
    redirect_responses: set[str] = field(default_factory=set)  # response_url names answering 307 to /collect
    # method -> which of its calls (1-based) answer 429 with Retry-After: retry_after_s
    rate_limit_calls: dict[str, set[int]] = field(default_factory=dict)
    retry_after_s: int = RETRY_AFTER_S
    # method -> calls allowed per minute (a sliding window, like Slack's per-method tiers); beyond it
    # 429 with Retry-After in whole seconds until a call leaves the window. For benchmarks.
    enforce_per_min: dict[str, int] = field(default_factory=dict)
    rate_limited: int = 0  # 429s answered because of enforce_per_min
    _accepted: dict[str, deque[float]] = field(default_factory=dict)
    uploads: dict[str, bytes] = field(default_factory=dict)  # file id -> what was uploaded to its URL
    redirect_uploads: bool = False  # the upload URL answers 307 to /collect (which keeps what reaches it)
    collected: list[bytes] = field(default_factory=list)
    shared: dict[str, str] = field(default_factory=dict)  # file id -> channel it was completed into
    base_url: str = ""
    _released: asyncio.Event = field(default_factory=asyncio.Event)

    def release(self) -> None:
        """Let every call held by the `timeout` shape finish (at the end of a test)."""
        self._released.set()

    # -- what tests look at ------------------------------------------------------------------

    def called(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    async def wait_for_responses(self, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.responses) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {count} response_url posts, got {len(self.responses)}: "
                                     f"{self.responses}")
            await asyncio.sleep(0.01)
        return self.responses

    async def wait_for_call(self, method: str, count: int = 1, timeout: float = 5.0) -> list[Call]:
        deadline = time.monotonic() + timeout
        while len(self.called(method)) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {count} {method} calls, got {self.called(method)}")
            await asyncio.sleep(0.01)
        return self.called(method)

    def response_url(self, name: str = "r1") -> str:
        return f"{self.base_url}/respond/{name}"

    # -- the server ---------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_post("/respond/{name}", self._respond)
        app.router.add_post("/upload/{file_id}", self._upload)
        app.router.add_post("/collect", self._collect)
        return app

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params: dict[str, Any] = dict(request.query)
        raw = await request.text()
        if raw:
            if request.content_type == "application/json":
                params.update(json.loads(raw))
            else:
                params.update(dict(parse_qsl(raw)))
        token = request.headers.get("Authorization", "").removeprefix("Bearer ") or None
        self.calls.append(Call(method, params, token))
        if method in self.failing:
            return web.json_response({"ok": False, "error": self.failing[method]})
        if method in self.shapes:
            return await self._fail(self.shapes[method])
        if (wait := self._over_limit(method)) is not None:
            self.rate_limited += 1
            return web.json_response({"ok": False, "error": "ratelimited"}, status=429,
                                     headers={"Retry-After": str(wait)})
        if len(self.called(method)) in self.rate_limit_calls.get(method, set()):
            return web.json_response({"ok": False, "error": "ratelimited"}, status=429,
                                     headers={"Retry-After": str(self.retry_after_s)})
        return web.json_response(self._answer(method, params))

    def _over_limit(self, method: str) -> int | None:
        limit = self.enforce_per_min.get(method)
        if not limit:
            return None
        now, window = time.monotonic(), self._accepted.setdefault(method, deque())
        while window and window[0] <= now - 60:
            window.popleft()
        if len(window) >= limit:
            return max(1, math.ceil(window[0] + 60 - now))
        window.append(now)
        return None

    def _answer(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        if method == "auth.test":
            return {"ok": True, "url": "https://fitglue-test.slack.com/", "team": "FitGlue", "user": "fitglue",
                    "team_id": "T0TEST", "user_id": "UBOT", "bot_id": "BBOT"}
        if method == "users.lookupByEmail":
            user_id = self.members.get(str(params.get("email", "")).lower())
            if user_id is None:
                return {"ok": False, "error": "users_not_found"}
            return {"ok": True, "user": {"id": user_id, "deleted": False, "is_bot": False,
                                         "profile": {"email": params["email"]}}}
        if method == "usergroups.users.list":
            group = params.get("usergroup", "")
            if group not in self.groups:
                return {"ok": False, "error": "no_such_subteam"}
            return {"ok": True, "users": self.groups[group]}
        if method == "conversations.open":
            return {"ok": True, "channel": {"id": "D" + str(params.get("users", "")).lstrip("UW")}}
        if method == "chat.postMessage":
            return {"ok": True, "channel": params.get("channel"), "ts": f"{time.time():.6f}",
                    "message": {"text": params.get("text")}}
        if method == "views.publish":
            return {"ok": True, "view": {"id": "V1"}}
        if method == "files.getUploadURLExternal":
            file_id = f"F{len(self.called(method))}"
            return {"ok": True, "upload_url": f"{self.base_url}/upload/{file_id}", "file_id": file_id}
        if method == "files.completeUploadExternal":
            files = params.get("files")
            files = json.loads(files) if isinstance(files, str) else files or []
            for item in files:
                if item["id"] not in self.uploads:
                    return {"ok": False, "error": "file_not_found"}
                self.shared[item["id"]] = str(params.get("channel_id"))
            return {"ok": True, "files": [{"id": f["id"], "title": f.get("title")} for f in files]}
        return {"ok": False, "error": "unknown_method"}

    async def _fail(self, shape: str) -> web.Response:
        if shape == "ok_false":
            return web.json_response({"ok": False, "error": "internal_error"})
        if shape == "not_json":
            return web.Response(status=405, text="Method Not Allowed", content_type="text/plain")
        if shape == "html_error":
            return web.Response(status=403, text="<html><body>Forbidden</body></html>", content_type="text/html")
        if shape == "broken_json":
            return web.Response(status=200, text='{"ok": tru', content_type="application/json")
        if shape == "server_error":
            return web.Response(status=503, text="<html>Service Unavailable</html>", content_type="text/html")
        if shape == "rate_limited":
            return web.json_response({"ok": False, "error": "ratelimited"}, status=429,
                                     headers={"Retry-After": str(RETRY_AFTER_S)})
        if shape == "timeout":
            await self._released.wait()
            return web.json_response({"ok": False, "error": "too_late"})
        raise AssertionError(f"unknown failure shape {shape!r}; known: {', '.join(FAILURE_SHAPES)}")

    async def _upload(self, request: web.Request) -> web.Response:
        if self.redirect_uploads:
            raise web.HTTPTemporaryRedirect(f"{self.base_url}/collect")
        data = await request.read()
        self.uploads[request.match_info["file_id"]] = data
        return web.Response(text=f"OK - {len(data)}")

    async def _collect(self, request: web.Request) -> web.Response:
        self.collected.append(await request.read())
        return web.Response(text="OK")

    async def _respond(self, request: web.Request) -> web.Response:
        if request.match_info["name"] in self.expired_responses:
            return web.Response(status=404, text="expired_url")
        if request.match_info["name"] in self.redirect_responses:
            raise web.HTTPTemporaryRedirect(f"{self.base_url}/collect")
        body = await request.json()
        body["_to"] = request.match_info["name"]
        self.responses.append(body)
        return web.Response(text="ok")
