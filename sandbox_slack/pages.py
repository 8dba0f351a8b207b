"""The local Slack's web page: a support channel, the alerts channel, each person's direct messages,
the App Home tab; a message box for `/fitglue …`, the bot's buttons (with their confirm dialogs) and
the switch between an agent on the support list and an outsider.

Every form posts to this server only (cross-site posts are refused) and carries no more than what was
typed or where the pressed button is; this server builds and signs what goes to the bot.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from jinja2 import Environment, PackageLoader, select_autoescape

from sandbox_slack import blockkit
from sandbox_slack.keys import LOCAL_SLACK
from sandbox_slack.workspace import AGENT, ALERTS_CHANNEL, CHANNEL_NAMES, OUTSIDER, SUPPORT_CHANNEL
from service.core.request_bodies import form_fields
from service.core.same_site import sent_by_another_site

_env = Environment(loader=PackageLoader("sandbox_slack", "templates"), autoescape=select_autoescape(["html"]))
_env.globals["views"] = blockkit.views

HEADERS = {"Cache-Control": "no-store", "X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff",
           "Referrer-Policy": "no-referrer",
           "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                                      "frame-ancestors 'none'"}
HOME = "home"
# While a reply is awaited the page reloads itself this often (seconds).
REFRESH_S = 2


def blocks_html(blocks: Any, message_id: int | None = None) -> str:
    """One message's (or view's) blocks as the page shows them, buttons included when ``message_id`` is given."""
    return _env.get_template("blocks.html").module.render_blocks(blocks, message_id)  # type: ignore[attr-defined]


def html(template: str, status: int = 200, **context: Any) -> web.Response:
    return web.Response(text=_env.get_template(template).render(**context), status=status,
                        content_type="text/html", headers=HEADERS)


def _conversation(request: web.Request) -> str:
    slack = request.app[LOCAL_SLACK]
    wanted = request.query.get("c", SUPPORT_CHANNEL)
    if wanted == HOME or wanted in CHANNEL_NAMES or slack.workspace.dm_user(wanted):
        return wanted
    raise web.HTTPNotFound(text="no such conversation in the local Slack")


def _sidebar(request: web.Request) -> dict[str, Any]:
    ws = request.app[LOCAL_SLACK].workspace
    dms = [(ws.dm_channel(p.id), p.name, len(ws.visible(ws.dm_channel(p.id), p.id))) for p in ws.people.values()]
    return {"channels": [(SUPPORT_CHANNEL, CHANNEL_NAMES[SUPPORT_CHANNEL]), (ALERTS_CHANNEL, CHANNEL_NAMES[ALERTS_CHANNEL])],
            "dms": dms, "me": ws.people[ws.page_user], "agent": ws.people[AGENT], "outsider": ws.people[OUTSIDER],
            "names": {p.id: p.name for p in ws.people.values()}}


async def channel_page(request: web.Request) -> web.Response:
    slack = request.app[LOCAL_SLACK]
    ws = slack.workspace
    conversation = _conversation(request)
    if conversation == HOME:
        return await home_page(request)
    dm_of = ws.dm_user(conversation)
    # A direct message is read as its recipient sees it: the DMs pane shows what each person was sent.
    reader = dm_of or ws.page_user
    title = f"#{CHANNEL_NAMES[conversation]}" if conversation in CHANNEL_NAMES else \
        f"Direct messages: FitGlue → {ws.people[dm_of].name if dm_of else conversation}"
    return html("channel.html", conversation=conversation, title=title, messages=ws.visible(conversation, reader),
                people=ws.people, can_type=conversation == SUPPORT_CHANNEL, reader=reader,
                refresh=REFRESH_S if ws.waiting_for(ws.page_user, slack.reply_wait_s) else None,
                **_sidebar(request))


async def home_page(request: web.Request) -> web.Response:
    slack = request.app[LOCAL_SLACK]
    ws = slack.workspace
    user = ws.page_user
    since = ws.home_published.get(user, 0)
    delivered = await slack.relay.home_opened(user)
    if delivered.ok:
        await ws.wait_for_home(user, since, slack.reply_wait_s)
    view = ws.home_views.get(user)
    return html("home.html", conversation=HOME, title="FitGlue · Home", view=view,
                problem=None if delivered.ok else delivered.problem, **_sidebar(request))


def _refuse_other_sites(request: web.Request) -> None:
    if sent_by_another_site(request):
        raise web.HTTPForbidden(text="this form was sent from another website; use the local Slack's own page")


def _back(conversation: str) -> web.Response:
    return web.Response(status=303, headers={"Location": f"/?c={conversation}"})


async def post_command(request: web.Request) -> web.Response:
    _refuse_other_sites(request)
    slack = request.app[LOCAL_SLACK]
    form = await form_fields(request)
    typed = (form.get("text") or "").strip()
    channel = SUPPORT_CHANNEL
    if not typed:
        return _back(channel)
    ws = slack.workspace
    if typed.split()[0] != "/fitglue":
        ws.post(channel, typed, [], sender=ws.page_user)  # a plain message: shown, nobody answers
        return _back(channel)
    ws.post(channel, typed, [], sender=ws.page_user, ephemeral_to=ws.page_user)
    name, acknowledged = await slack.relay.command(ws.page_user, typed.removeprefix("/fitglue").strip(), channel)
    # An acknowledgement with a message may be all there is (a refusal): wait briefly, the page reloads.
    await ws.wait_for_response(name, slack.settle_s if acknowledged else slack.reply_wait_s)
    return _back(channel)


def _pressed(request: web.Request, fields: Any) -> tuple[Any, int, dict[str, Any]]:
    ws = request.app[LOCAL_SLACK].workspace
    try:
        message_id, block, element = (int(fields.get(k, "")) for k in ("m", "b", "e"))
    except ValueError:
        raise web.HTTPBadRequest(text="m, b and e must be whole numbers") from None
    message = ws.message(message_id)
    button = blockkit.find_button(message.blocks, block, element) if message is not None else None
    if message is None or button is None:
        raise web.HTTPNotFound(text="that button is no longer there (the message was replaced)")
    return message, block, button


async def confirm_page(request: web.Request) -> web.Response:
    message, block, button = _pressed(request, request.query)
    confirm = blockkit.confirm_of(button.get("confirm"))
    return html("confirm.html", confirm=confirm, m=message.id, b=block, e=request.query["e"],
                back=message.channel, conversation=message.channel, title=confirm.title if confirm else "Confirm",
                **_sidebar(request))


async def post_action(request: web.Request) -> web.Response:
    _refuse_other_sites(request)
    slack = request.app[LOCAL_SLACK]
    message, block, button = _pressed(request, await form_fields(request))
    name = await slack.relay.click(slack.workspace.page_user, message, block, button)
    await slack.workspace.wait_for_response(name, slack.reply_wait_s)
    return _back(message.channel)


async def post_agent(request: web.Request) -> web.Response:
    _refuse_other_sites(request)
    ws = request.app[LOCAL_SLACK].workspace
    who = (await form_fields(request)).get("who", "")
    if who not in ws.people:
        raise web.HTTPBadRequest(text="who must be a person of this workspace")
    ws.page_user = who
    return _back(request.query.get("c", SUPPORT_CHANNEL) if request.query.get("c") in CHANNEL_NAMES else SUPPORT_CHANNEL)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/", channel_page)
    app.router.add_post("/command", post_command)
    app.router.add_get("/confirm", confirm_page)
    app.router.add_post("/action", post_action)
    app.router.add_post("/agent", post_agent)
