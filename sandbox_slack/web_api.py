"""Slack's Web API for the bot (`POST /api/{method}`, "Web API methods" in Slack's docs) and the
response URLs (`POST /respond/{name}`). Bodies are forms or JSON, as slack_sdk sends them; the bot
token (or, for `apps.connections.open`, the app-level token) goes in `Authorization: Bearer`.
Answers have Slack's shape: `{"ok": true, …}` or `{"ok": false, "error": CODE}`.

Files take Slack's upload flow ("Uploading files" in Slack's docs; the old `files.upload` is retired):
`files.getUploadURLExternal` (filename, length) gives an upload URL here (`POST /upload/{file_id}`, the
bytes), and `files.completeUploadExternal` (files, channel_id) shares them into that one conversation,
shown as a message that names the file and shows its text.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from aiohttp import web

from sandbox_slack.socket_mode import SocketHub
from sandbox_slack.workspace import BOT_USER, TEAM, Workspace
from service.core.inputs import BadInput, parse_json
from service.core.request_bodies import form_fields

Answer = dict[str, Any]


@dataclass
class WebApi:
    workspace: Workspace
    hub: SocketHub
    bot_token: str
    app_token: str | None
    ws_base: Callable[[], str]  # ws://host:port of this server, known once it listens
    # file id -> (filename, its bytes once uploaded): files.getUploadURLExternal, then the upload
    files: dict[str, tuple[str, bytes | None]] = field(default_factory=dict)

    async def method(self, request: web.Request) -> web.Response:
        name = request.match_info["method"]
        params = await _params(request)
        token = request.headers.get("Authorization", "").removeprefix("Bearer ").strip() or params.get("token")
        if not token:
            return web.json_response({"ok": False, "error": "not_authed"})
        wanted = self.app_token if name == "apps.connections.open" else self.bot_token
        if not wanted or token != wanted:
            return web.json_response({"ok": False, "error": "invalid_auth"})
        handler = self.METHODS.get(name)
        if handler is None:
            return web.json_response({"ok": False, "error": "unknown_method"})
        return web.json_response(handler(self, params))

    async def respond(self, request: web.Request) -> web.Response:
        try:
            body = parse_json(await request.read())
        except BadInput:
            return web.Response(status=400, text="invalid_payload")
        if not isinstance(body, dict) or not self.workspace.respond(request.match_info["name"], body):
            return web.Response(status=404, text="expired_url")
        return web.Response(text="ok")

    # the methods ----------------------------------------------------------------------------------
    def auth_test(self, params: Answer) -> Answer:
        return {"ok": True, "url": "http://fitglue-sandbox.slack.local/", "team": "FitGlue sandbox", "user": "fitglue",
                "team_id": TEAM, "user_id": BOT_USER, "bot_id": "B0FITGLUE", "is_enterprise_install": False}

    def post_message(self, params: Answer) -> Answer:
        channel = self.workspace.channel_of(str(params.get("channel") or ""))
        if channel is None:
            return {"ok": False, "error": "channel_not_found"}
        if not params.get("text") and not params.get("blocks"):
            return {"ok": False, "error": "no_text"}
        message = self.workspace.post(channel, str(params.get("text") or ""), _list(params.get("blocks")))
        return {"ok": True, "channel": channel, "ts": f"{message.at.timestamp():.6f}",
                "message": {"text": message.text, "blocks": message.blocks}}

    def post_ephemeral(self, params: Answer) -> Answer:
        channel = self.workspace.channel_of(str(params.get("channel") or ""))
        user = str(params.get("user") or "")
        if channel is None:
            return {"ok": False, "error": "channel_not_found"}
        if user not in self.workspace.people:
            return {"ok": False, "error": "user_not_in_channel"}
        message = self.workspace.post(channel, str(params.get("text") or ""), _list(params.get("blocks")),
                                      ephemeral_to=user)
        return {"ok": True, "message_ts": f"{message.at.timestamp():.6f}"}

    def views_publish(self, params: Answer) -> Answer:
        user, view = str(params.get("user_id") or ""), params.get("view")
        if isinstance(view, str):
            view = _json_or_none(view)
        if user not in self.workspace.people:
            return {"ok": False, "error": "user_not_found"}
        if not isinstance(view, dict) or view.get("type") != "home":
            return {"ok": False, "error": "invalid_arguments"}
        self.workspace.publish_home(user, view)
        return {"ok": True, "view": {"id": "V" + user, "type": "home"}}

    def lookup_by_email(self, params: Answer) -> Answer:
        person = self.workspace.by_email(str(params.get("email") or ""))
        if person is None:
            return {"ok": False, "error": "users_not_found"}
        return {"ok": True, "user": {"id": person.id, "team_id": TEAM, "name": person.name, "deleted": False,
                                     "is_bot": False, "profile": {"email": person.email, "real_name": person.name}}}

    def conversations_open(self, params: Answer) -> Answer:
        users = [u for u in str(params.get("users") or "").split(",") if u]
        if len(users) != 1 or users[0] not in self.workspace.people:
            return {"ok": False, "error": "user_not_found"}
        return {"ok": True, "channel": {"id": self.workspace.dm_channel(users[0])}}

    def usergroups_users_list(self, params: Answer) -> Answer:
        return {"ok": False, "error": "no_such_subteam"}  # the sandbox workspace has no user groups

    def connections_open(self, params: Answer) -> Answer:
        return {"ok": True, "url": self.hub.open_url(self.ws_base())}

    def upload_url(self, params: Answer) -> Answer:
        filename, length = str(params.get("filename") or ""), str(params.get("length") or "")
        if not filename or not length.isdigit():
            return {"ok": False, "error": "invalid_arguments"}
        file_id = "F" + secrets.token_hex(5).upper()
        self.files[file_id] = (filename, None)
        return {"ok": True, "upload_url": f"{self.ws_base().replace('ws://', 'http://', 1)}/upload/{file_id}", "file_id": file_id}

    async def upload(self, request: web.Request) -> web.Response:
        file_id = request.match_info["file_id"]
        if file_id not in self.files:
            return web.Response(status=404, text="file_not_found")
        data = await request.read()
        self.files[file_id] = (self.files[file_id][0], data)
        return web.Response(text=f"OK - {len(data)}")

    def complete_upload(self, params: Answer) -> Answer:
        listed = params.get("files")
        listed = _json_or_none(listed) if isinstance(listed, str) else listed
        if not isinstance(listed, list) or not listed or not all(isinstance(f, dict) for f in listed):
            return {"ok": False, "error": "invalid_arguments"}
        channel = self.workspace.channel_of(str(params.get("channel_id") or ""))
        if channel is None:
            return {"ok": False, "error": "channel_not_found"}
        if any(self.files.get(str(f.get("id")), ("", None))[1] is None for f in listed):
            return {"ok": False, "error": "file_not_found"}
        blocks: list[Any] = []
        for f in listed:
            filename, data = self.files[str(f["id"])]
            text = (data or b"").decode("utf-8", "replace")
            blocks += [{"type": "context", "elements": [{"type": "mrkdwn", "text": f":link: *{f.get('title') or filename}* "
                                                          f"({filename}, {len(data or b'')} bytes)"}]},
                       {"type": "section", "text": {"type": "plain_text", "text": text[:3000] or "(empty file)"}}]
        comment = str(params.get("initial_comment") or "")
        if comment:
            blocks.insert(0, {"type": "section", "text": {"type": "mrkdwn", "text": comment}})
        self.workspace.post(channel, comment or "a file", blocks)
        return {"ok": True, "files": [{"id": f["id"], "title": f.get("title") or self.files[str(f["id"])][0]}
                                      for f in listed]}

    METHODS: ClassVar[dict[str, Callable[[WebApi, Answer], Answer]]] = {
        "auth.test": auth_test, "chat.postMessage": post_message, "chat.postEphemeral": post_ephemeral,
        "views.publish": views_publish, "users.lookupByEmail": lookup_by_email,
        "conversations.open": conversations_open, "usergroups.users.list": usergroups_users_list,
        "apps.connections.open": connections_open, "files.getUploadURLExternal": upload_url,
        "files.completeUploadExternal": complete_upload,
    }

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/api/{method}", self.method)
        app.router.add_get("/api/{method}", self.method)
        app.router.add_post("/respond/{name}", self.respond)
        app.router.add_post("/upload/{file_id}", self.upload)


async def _params(request: web.Request) -> Answer:
    params: Answer = dict(request.query)
    if request.content_type == "application/json":
        try:
            body = parse_json(await request.read() or b"{}")
        except BadInput:
            return params
        if isinstance(body, dict):
            params.update(body)
    elif request.can_read_body:
        params.update(dict(await form_fields(request)))
    return params


def _json_or_none(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _list(value: Any) -> list[Any]:
    """`blocks` arrive as a list (JSON bodies) or as JSON text (form bodies)."""
    if isinstance(value, str):
        value = _json_or_none(value)
    return value if isinstance(value, list) else []


