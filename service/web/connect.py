"""Connect pages and the OAuth callback. Views stay thin: the flow lives in service.connect_flow."""

from __future__ import annotations

from aiohttp import web

from .. import vocab
from ..connect_flow import CallbackResult, complete_connect, start_connect
from ..links import LinkExpired, LinkProblem, LinkUsed, resolve_link
from ..strava import StravaError
from .keys import RUNTIME
from .pages import render

COOKIE = "fitglue_oauth"

STATUS_LABELS = {
    vocab.NOT_CONNECTED: ("Not connected", "", None),
    vocab.CONNECTED: ("Connected", "ok", "Strava is already connected. Connecting again replaces the old connection."),
    vocab.NEEDS_REAUTH: ("Needs re-authorization", "bad",
                         "Strava stopped accepting FitGlue's access. Connecting again fixes it."),
    vocab.REVOKED: ("Access revoked", "bad", "FitGlue's access was removed in Strava's settings. "
                    "Connect again only if you want FitGlue to use Strava."),
}

MISSING_EXPLAINED = {
    "activity:read_all": "Reading activities was not allowed: FitGlue cannot use Strava as a source, "
                         "and Strava will not tell FitGlue about new activities.",
    "activity:write": "Writing activities was not allowed: FitGlue cannot send activities to Strava.",
}


def _link_problem_page(request: web.Request, problem: LinkProblem) -> web.Response:
    if isinstance(problem, LinkUsed):
        return render(request, "problem.html", problem.status, title="This link was already used",
                      message="Strava was connected with this link, so it cannot be used again.",
                      steps=["If something still does not work, ask FitGlue support for a new Connect link."])
    if isinstance(problem, LinkExpired):
        return render(request, "problem.html", problem.status, title="This link has expired",
                      message="Connect links only work for a limited time.",
                      steps=["Ask FitGlue support for a new Connect link and open it soon after you get it."])
    return render(request, "problem.html", problem.status, title="This link is not valid",
                  message="The link looks damaged: part of it may be missing or changed.",
                  steps=["Open the link again straight from the message it came in, without editing it.",
                         "If that fails, ask FitGlue support for a new Connect link."])


async def connect_page(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    from ..db.models import StravaConnection, User  # local: keeps the view module's imports light

    async with rt.sessions() as session:
        try:
            link = await resolve_link(session, rt.link_signer, rt.clock, request.query.get("t"))
        except LinkProblem as problem:
            return _link_problem_page(request, problem)
        user = await session.get(User, link.user_id)
        conn = (await session.execute(
            StravaConnection.__table__.select().where(StravaConnection.user_id == link.user_id))).first()
    assert user is not None
    status = conn.status if conn is not None else vocab.NOT_CONNECTED
    label, css, note = STATUS_LABELS.get(status, (status, "", None))
    return render(request, "connect.html", email=user.email, status_label=label, status_class=css,
                  status_note=note, token=request.query.get("t"),
                  expires_at=link.expires_at.strftime("%Y-%m-%d %H:%M"))


async def start_authorize(request: web.Request) -> web.StreamResponse:
    rt = request.app[RUNTIME]
    form = await request.post()
    token = form.get("t")
    try:
        start = await start_connect(rt, token if isinstance(token, str) else None)
    except LinkProblem as problem:
        return _link_problem_page(request, problem)
    response = web.Response(status=303, headers={"Location": start.authorize_url})
    response.set_cookie(COOKIE, start.browser_secret, max_age=600, path="/oauth/strava", httponly=True,
                        samesite="Lax", secure=rt.settings.secure_cookies)
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    return response


def _result_page(request: web.Request, result: CallbackResult) -> web.Response:
    if result.connected:
        missing = [MISSING_EXPLAINED.get(scope, scope) for scope in result.missing_scopes]
        return render(request, "connected.html", result.http_status, email=result.email, missing=missing,
                      retry_url=result.retry_url)
    pages = {
        vocab.ATTEMPT_DENIED: ("Strava was not connected",
                               "You chose not to give FitGlue access on Strava's page, so nothing was connected.",
                               ["If you do want to connect, press Try again and choose Authorize on Strava's page."]),
        vocab.ATTEMPT_ATHLETE_CONFLICT: (
            "Signed in to a different Strava account",
            "The Strava account you signed in with is already connected to another FitGlue account, "
            "so nothing was changed.",
            ["Check which Strava account your browser is signed in to: sign out of Strava, or use a "
             "private (incognito) window, and sign in with the account that belongs to you.",
             "If this Strava account really is yours, contact FitGlue support."]),
        vocab.ATTEMPT_STATE_INVALID: (
            "This sign-in could not be completed",
            "FitGlue could not match Strava's answer to a sign-in started in this browser "
            f"({result.reason or 'unknown reason'}).",
            ["Start again from your Connect link in this same browser, and finish within 10 minutes.",
             "If your browser blocks cookies, allow them for this site, or try a private window."]),
        vocab.ATTEMPT_APP_REJECTED: (
            "FitGlue cannot reach Strava right now",
            "Strava did not accept FitGlue's own app settings. This is on our side, not yours.",
            ["FitGlue support has been told. Please try again later or contact support."]),
    }
    title, message, steps = pages.get(result.outcome, (
        "Strava was not connected",
        "FitGlue could not finish connecting to Strava.",
        ["Try again from your Connect link.",
         "Make sure you are signed in to the right Strava account; a private (incognito) window helps "
         "if your browser keeps using another account.",
         "If it keeps failing, ask FitGlue support for a new link."]))
    return render(request, "problem.html", result.http_status, title=title, message=message, steps=steps,
                  retry_url=result.retry_url)


async def oauth_callback(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    params = {key: request.query.get(key, "") for key in ("state", "code", "scope", "error")}
    try:
        result = await complete_connect(rt, params, request.cookies.get(COOKIE))
    except StravaError:
        result = CallbackResult(400, vocab.ATTEMPT_EXCHANGE_FAILED)
    response = _result_page(request, result)
    if not result.foreign_browser:
        response.del_cookie(COOKIE, path="/oauth/strava")
    if result.connected:
        for hook in rt.on_connected:
            rt.spawn(hook(result.athlete_id))
    return response


def setup(app: web.Application) -> None:
    app.router.add_get("/connect/strava", connect_page)
    app.router.add_post("/connect/strava/authorize", start_authorize)
    app.router.add_get("/oauth/strava/callback", oauth_callback)
