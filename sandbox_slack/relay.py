"""Requests to the bot, built as Slack builds them: slash commands (a form), button clicks (a
`block_actions` payload in a form's `payload` field) and events (JSON). Over HTTP each is signed with
the signing secret (`v0=` HMAC-SHA256 of `v0:{timestamp}:{body}`, Slack's "Verifying requests");
over Socket Mode it is an envelope instead. The browser only ever says what was typed or which
button was pressed; everything else (and the secret) stays on this server.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
from slack_sdk.signature import SignatureVerifier

from sandbox_slack.socket_mode import NoConnection, SocketHub
from sandbox_slack.workspace import APP_ID, CHANNEL_NAMES, TEAM, Message, Workspace

COMMAND = "/fitglue"


@dataclass
class Delivered:
    """What the bot answered at once: the HTTP response (or the Socket Mode ack), as a message body."""

    ok: bool
    body: dict[str, Any]
    problem: str = ""


@dataclass
class Relay:
    workspace: Workspace
    hub: SocketHub
    base_url: str  # this local Slack's own, for response URLs
    events_url: str = ""  # the service's /slack/events (HTTP mode)
    signing_secret: str = ""
    ack_timeout_s: float = 3.0  # Slack's limit for an acknowledgement
    http: aiohttp.ClientSession | None = None

    def response_url(self, name: str) -> str:
        return f"{self.base_url}/respond/{name}"

    # what the page asks for -------------------------------------------------------------------------
    async def command(self, user: str, text: str, channel: str) -> tuple[str, bool]:
        """Relay `/fitglue text`; returns the response URL's name (later replies are posted to it) and
        whether the acknowledgement itself carried a message (shown at once, as Slack does)."""
        name = self.workspace.new_response(channel, user)
        person = self.workspace.people[user]
        fields = {"token": "sandbox", "team_id": TEAM, "team_domain": "fitglue-sandbox", "channel_id": channel,
                  "channel_name": CHANNEL_NAMES.get(channel, "directmessage"), "user_id": user,
                  "user_name": person.name, "command": COMMAND, "text": text, "api_app_id": APP_ID,
                  "is_enterprise_install": "false", "response_url": self.response_url(name),
                  "trigger_id": _trigger_id()}
        if self.hub.connected:
            done = await self._over_socket("slash_commands", fields, accepts_response_payload=True)
        else:
            done = await self._over_http(urlencode(fields), "application/x-www-form-urlencoded")
        return name, self._show_immediate(done, name, user)

    async def click(self, user: str, message: Message, block_index: int, button: dict[str, Any]) -> str:
        """Relay a press of ``button`` (in block ``block_index`` of ``message``) as `block_actions`."""
        name = self.workspace.new_response(message.channel, user, replaces=message.id)
        block = message.blocks[block_index] if isinstance(message.blocks[block_index], dict) else {}
        payload = {
            "type": "block_actions", "user": {"id": user, "username": self.workspace.people[user].name,
                                              "name": self.workspace.people[user].name, "team_id": TEAM},
            "api_app_id": APP_ID, "token": "sandbox", "trigger_id": _trigger_id(),
            "team": {"id": TEAM, "domain": "fitglue-sandbox"}, "is_enterprise_install": False,
            "container": {"type": "message", "message_ts": _ts(message), "channel_id": message.channel,
                          "is_ephemeral": message.ephemeral_to is not None},
            "channel": {"id": message.channel, "name": CHANNEL_NAMES.get(message.channel, "directmessage")},
            "response_url": self.response_url(name),
            "actions": [{"type": "button", "action_id": button.get("action_id", ""),
                         "block_id": str(block.get("block_id") or ""), "text": button.get("text", {}),
                         "value": button.get("value", ""), **({"style": button["style"]} if button.get("style") else {}),
                         "action_ts": f"{time.time():.6f}"}],
        }
        if message.ephemeral_to is None:
            payload["message"] = {"type": "message", "ts": _ts(message), "text": message.text, "blocks": message.blocks}
        if self.hub.connected:
            done = await self._over_socket("interactive", payload)
        else:
            done = await self._over_http("payload=" + quote(json.dumps(payload), safe=""), "application/x-www-form-urlencoded")
        self._show_immediate(done, name, user)
        return name

    async def home_opened(self, user: str) -> Delivered:
        event = {"token": "sandbox", "team_id": TEAM, "api_app_id": APP_ID, "type": "event_callback",
                 "event_id": "Ev" + secrets.token_hex(6).upper(), "event_time": int(time.time()),
                 "event": {"type": "app_home_opened", "user": user, "channel": self.workspace.dm_channel(user),
                           "tab": "home", "event_ts": f"{time.time():.6f}"}}
        if self.hub.connected:
            return await self._over_socket("events_api", event)
        return await self._over_http(json.dumps(event), "application/json")

    # how it travels ---------------------------------------------------------------------------------
    async def _over_http(self, body: str, content_type: str) -> Delivered:
        if not self.events_url or self.http is None:
            return Delivered(False, {}, "the bot is not connected to this Slack (no request URL)")
        stamp = str(int(time.time()))
        signature = SignatureVerifier(self.signing_secret).generate_signature(timestamp=stamp, body=body) or ""
        headers = {"Content-Type": content_type, "X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": signature}
        try:
            async with self.http.post(self.events_url, data=body.encode(), headers=headers,
                                      timeout=aiohttp.ClientTimeout(total=self.ack_timeout_s)) as answer:
                raw = await answer.read()
                if answer.status != 200:
                    return Delivered(False, {}, f"the app answered HTTP {answer.status}")
        except (aiohttp.ClientError, TimeoutError) as exc:
            return Delivered(False, {}, f"the app did not answer in time ({type(exc).__name__})")
        return Delivered(True, _json_object(raw))

    async def _over_socket(self, kind: str, payload: dict[str, Any], accepts_response_payload: bool = False
                           ) -> Delivered:
        try:
            return Delivered(True, await self.hub.deliver(kind, payload, self.ack_timeout_s, accepts_response_payload))
        except NoConnection as exc:
            return Delivered(False, {}, str(exc))

    def _show_immediate(self, done: Delivered, name: str, user: str) -> bool:
        """Show the acknowledgement's own message, if it carried one, or Slack's note that the app
        failed; whether anything was shown."""
        if not done.ok:
            target = self.workspace.responses[name]
            self.workspace.post(target.channel, f"{COMMAND} failed: {done.problem} (Slack shows this as "
                                "\"dispatch_failed\" or \"operation_timeout\")", [], sender="USLACKBOT",
                                ephemeral_to=user)
        elif done.body.get("text") or done.body.get("blocks"):
            self.workspace.acknowledged(name, str(done.body.get("text") or ""),
                                        done.body["blocks"] if isinstance(done.body.get("blocks"), list) else [],
                                        None if done.body.get("response_type") == "in_channel" else user)
        else:
            return False
        return True


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        parsed = json.loads(raw) if raw.strip() else {}
    except ValueError:
        return {"text": raw.decode("utf-8", "replace")}
    return parsed if isinstance(parsed, dict) else {}


def _ts(message: Message) -> str:
    return f"{message.at.timestamp():.6f}"


def _trigger_id() -> str:
    return f"{secrets.randbelow(10**10)}.{secrets.randbelow(10**10)}.{secrets.token_hex(8)}"
