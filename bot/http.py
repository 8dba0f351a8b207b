"""HTTP mode: Bolt on the service's own aiohttp application at POST /slack/events.

`slack_bolt.adapter.aiohttp` only offers the two converters; this is the handler around them.
One route serves slash commands, button clicks and events.

The signature (HMAC of the body, 5-minute window) is verified here, before Bolt: Bolt's own check
logs the *whole body* at INFO when it fails (250 KB a request for anyone who posts junk) and
raises on a signature header that is not ASCII (hmac.compare_digest). A request that is not
Slack's gets 401 and one short INFO line; Bolt checks again and always agrees.

Bolt parses the body *before* it checks the signature, and a body it cannot parse raises (a 500
and a logged traceback for anyone on the internet). So the body is checked here first, the way
Slack sends it: UTF-8; JSON (an object) or a well-formed form whose `payload`, when present, is a
JSON object; a request timestamp of ASCII digits. Anything else is a 400 and a one-line INFO log,
and Bolt never sees it.
"""

from __future__ import annotations

import logging

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.request.async_internals import build_async_context
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.signature import SignatureVerifier

from service.core.inputs import BadInput, parse_form, parse_json_object, parse_whole_number

EVENTS_PATH = "/slack/events"
TIMESTAMP_HEADER = "X-Slack-Request-Timestamp"
SIGNATURE_HEADER = "X-Slack-Signature"

log = logging.getLogger("fitglue.bot")


def check_slack_request(timestamp: str | None, body: bytes, content_type: str) -> dict[str, str] | None:
    """Raises BadInput unless Bolt can read the request as Slack sends it: a timestamp header of ASCII
    digits when there is one (Bolt int()s it), and a body parsed by the same branches Bolt takes.
    Returns the form fields of a form body (None for JSON or an empty body)."""
    if timestamp is not None:
        parse_whole_number(timestamp, TIMESTAMP_HEADER)
    if not body:
        return None
    if content_type == "application/json" or body.startswith(b"{"):
        parse_json_object(body)
        return None
    form = parse_form(body)
    if "payload" in form:
        parse_json_object(form["payload"], "the payload field")
    return form


def signed_by_slack(verifier: SignatureVerifier, body: bytes, timestamp: str | None,
                    signature: str | None) -> bool:
    """True when the signature headers are present, ASCII (a header of other bytes reaches us as
    non-ASCII text, which compare_digest refuses with TypeError) and match the body within the
    5-minute window."""
    if not timestamp or not signature or not (timestamp.isascii() and signature.isascii()):
        return False
    return verifier.is_valid(body, timestamp, signature)


def _undo_payload_quirk(bolt_request: AsyncBoltRequest, form: dict[str, str] | None) -> None:
    """slack_bolt (1.30) takes any form body that merely *contains* the text "payload" for an
    interactivity payload; without a `payload` field it parses the body as {} and the request goes
    unhandled (404): `/fitglue diagnose payload@example.com` did. Give it the form's real fields."""
    if form and "payload" not in form and not bolt_request.body:
        bolt_request.body = dict(form)
        bolt_request.context = build_async_context(AsyncBoltContext({}), bolt_request.body)


def _bad_request(message: str) -> web.Response:
    return web.json_response({"error": "bad_request", "message": message}, status=400)


def mount_http(app: web.Application, bolt: AsyncApp, signing_secret: str) -> None:
    verifier = SignatureVerifier(signing_secret)

    async def slack_events(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        timestamp = request.headers.get(TIMESTAMP_HEADER)
        try:
            form = check_slack_request(timestamp, body, request.content_type)
            bolt_request = await to_bolt_request(request)
            _undo_payload_quirk(bolt_request, form)
        except Exception as exc:  # noqa: BLE001 - only parsing happens here, before any signature check
            # A body of another shape than Slack's (Bolt's own extraction trips on, say, a number
            # where it expects an object): the sender's error, not ours.
            log.info("refused a /slack/events body Bolt could not read: %s", exc if isinstance(exc, BadInput)
                     else type(exc).__name__)
            return _bad_request(str(exc) if isinstance(exc, BadInput) else "the body is not a Slack request")
        if not signed_by_slack(verifier, body, timestamp, request.headers.get(SIGNATURE_HEADER)):
            log.info("refused a /slack/events request without a valid Slack signature (%d bytes)", len(body))
            return web.json_response({"error": "invalid_signature",
                                      "message": "the request is not signed by Slack (or is over 5 minutes old)"},
                                     status=401)
        return await to_aiohttp_response(await bolt.async_dispatch(bolt_request))

    app.router.add_post(EVENTS_PATH, slack_events)
