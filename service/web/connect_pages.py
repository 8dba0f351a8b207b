"""Connect pages and the OAuth callback. Views render; what they show is decided by the desk's Connect
operations (service.desk.connect_ops), which run the flow.

What a page says about a grant comes from the one verdict (``grant_verdict``): the landing
page calls Strava "already connected" only when nothing is missing, exactly when the diagnosis
finds no missing permissions.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from aiohttp import web

from service.core.request_bodies import form_fields
from service.desk import connect_ops as connect
from service.web import same_origin
from service.web.keys import RUNTIME
from service.web.pages import render
from service.web.result_texts import problem_texts, strava_account
from troubleshooting import load_knowledge
from troubleshooting.permissions import GrantVerdict
from troubleshooting.timefmt import clock_time, duration
from troubleshooting.vocabulary import ConnectionStatus, Severity

log = logging.getLogger(__name__)

# The browser secret binding OAuth attempts to a browser (``__Host-`` prefixed behind https). It is
# sent to the authorize route as well as to the callback, so that a browser keeps one secret for all
# its attempts: a second tab does not make the first one's result page unprovable.
COOKIE = "fitglue_oauth"
PAGE_PATH = "/connect/strava"

STATUS_LABELS: dict[str, tuple[str, str, str | None]] = {
    ConnectionStatus.NOT_CONNECTED: ("Not connected", "", None),
    ConnectionStatus.NEEDS_REAUTH: ("Needs re-authorization", "bad",
                                    "Strava stopped accepting FitGlue's access. Connecting again fixes it."),
    ConnectionStatus.REVOKED: ("Access revoked", "bad", "FitGlue's access was removed in Strava's settings. "
                               "Connect again only if you want FitGlue to use Strava."),
}


def explain_missing(verdict: GrantVerdict | None) -> list[str]:
    """One line per shortfall, in the user's words from the knowledge file (``permissions``); whether
    syncing still works is the verdict's ``sync_sentence``."""
    words = load_knowledge().permissions
    return [words[s.need].for_user for s in verdict.shortfalls] if verdict is not None else []


def status_view(status: str, verdict: GrantVerdict | None) -> tuple[str, str, str | None]:
    """(label, css class, note) for a connection's status and the verdict on its grant."""
    if status != ConnectionStatus.CONNECTED:
        return STATUS_LABELS.get(status, (status, "", None))
    if verdict is None or connect.fully_connected(status, verdict):
        return ("Connected", "ok", "Strava is already connected with every permission FitGlue needs. "
                "Connecting again replaces the old connection.")
    label, css = ("Connected, with limits", "bad") if verdict.severity == Severity.ERROR else \
        ("Connected, some permissions missing", "warn")
    return (label, css, "Some permissions were not granted (" + ", ".join(verdict.missing_scopes) + "). "
            f"{verdict.sync_sentence} Connect again and leave every box ticked to fix it.")


async def _link_used_page(request: web.Request, problem: connect.LinkUsed) -> web.Response:
    """The link did its job; say how Strava stands now, so going back to it never misleads."""
    status, verdict = await connect.state_after_used_link(request.app[RUNTIME], problem)
    if connect.fully_connected(status, verdict):
        message = ("Strava was connected with this link, and it still is, with every permission FitGlue needs. "
                   "There is nothing more to do.")
        steps = ["You can close this page."]
    else:
        label, _css, note = status_view(status, verdict)
        message = f"Strava was connected with this link. Its status has changed since then: {label.lower()}."
        steps = [note or "", "Ask FitGlue support for a new Connect link: this one cannot be used again."]
    return render(request, "problem.html", problem.status, title="This link was already used", message=message,
                  steps=[step for step in steps if step])


async def _link_problem_page(request: web.Request, problem: connect.LinkProblem) -> web.Response:
    if isinstance(problem, connect.LinkUsed):
        return await _link_used_page(request, problem)
    if isinstance(problem, connect.LinkExpired):
        return render(request, "problem.html", problem.status, title="This link has expired",
                      message="Connect links only work for a limited time.",
                      steps=["Ask FitGlue support for a new Connect link and open it soon after you get it."])
    return render(request, "problem.html", problem.status, title="This link is not valid",
                  message="The link looks damaged: part of it may be missing or changed.",
                  steps=["Open the link again straight from the message it came in, without editing it.",
                         "If that fails, ask FitGlue support for a new Connect link."])


async def connect_page(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    try:
        link = await connect.open_link(rt, request.query.get("t"))
    except connect.LinkProblem as problem:
        return await _link_problem_page(request, problem)
    label, css, note = status_view(link.status, link.verdict)
    nonce = same_origin.form_nonce(request, rt.settings)
    response = render(request, "connect.html", email=link.email, status_label=label, status_class=css,
                      status_note=note, token=request.query.get("t"),
                      form_field=same_origin.FORM_FIELD, form_token=same_origin.form_token(rt.settings, nonce),
                      expires_at=link.expires_at.strftime("%Y-%m-%d %H:%M"))
    same_origin.set_form_cookie(response, rt.settings, nonce)
    return response


def _cross_site_page(request: web.Request) -> web.Response:
    return render(request, "problem.html", 403, title="This did not come from FitGlue's page",
                  message="Connecting Strava can only be started from FitGlue's own Connect page. This request "
                          "came from somewhere else, so nothing happened.",
                  steps=["If you want to connect Strava, open the Connect link FitGlue sent you and press "
                         "Connect with Strava on that page.",
                         "If you did not mean to connect anything, you can close this page."])


def _too_many_attempts_page(request: web.Request, capped: connect.TooManyAttempts) -> web.Response:
    now = request.app[RUNTIME].clock.now()
    again_at = now + timedelta(seconds=capped.retry_after_s)
    what = "with this link" if capped.per == "link" else "for this FitGlue account"
    response = render(
        request, "problem.html", 429, title="Too many tries for now",
        message=f"Connecting Strava was started {capped.cap} times {what} within "
                f"{duration(timedelta(seconds=capped.window_s))}, which is as often as FitGlue allows. "
                "Nothing was sent to Strava this time.",
        steps=[f"Wait until {clock_time(again_at, now)} (about "
               f"{duration(timedelta(seconds=max(60, capped.retry_after_s)))}), then open your Connect link "
               "again and press Connect with Strava once.",
               "If it keeps going wrong, ask FitGlue support for help instead of trying again."])
    response.headers["Retry-After"] = str(capped.retry_after_s)
    return response


async def start_authorize(request: web.Request) -> web.StreamResponse:
    rt = request.app[RUNTIME]
    form = await form_fields(request)
    refused = same_origin.refusal(request, rt.settings, form.get(same_origin.FORM_FIELD))
    if refused:
        log.info("refused a Connect start not sent from our page: %s", refused)
        return _cross_site_page(request)
    try:
        start = await connect.begin_sign_in(rt, form.get("t"),
                                    same_origin.read_browser_cookie(request, rt.settings, COOKIE))
    except connect.LinkProblem as problem:
        return await _link_problem_page(request, problem)
    except connect.TooManyAttempts as capped:
        return _too_many_attempts_page(request, capped)
    response = web.Response(status=303, headers={"Location": start.authorize_url})
    # It outlives the state: the browser that finishes a sign-in can reload its result page.
    same_origin.set_browser_cookie(response, rt.settings, COOKIE, start.browser_secret,
                                   max_age=rt.settings.connect_result_ttl_s)
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    return response


_REPLAYED_NOTE = "This is the result of a sign-in that already finished; reloading this page did not repeat it."


def _connected_page(request: web.Request, result: connect.CallbackResult) -> web.Response:
    verdict = result.verdict
    severity = verdict.severity if verdict is not None else Severity.OK
    title = {Severity.OK: "Connected", Severity.WARNING: "Connected, with a warning"}.get(severity, "Connected, with limits")
    return render(request, "connected.html", result.http_status, title=title, email=result.email,
                  athlete=strava_account(result), missing=explain_missing(verdict), sync=verdict.sync_sentence if verdict else None,
                  retry_url=result.retry_url,
                  note=_REPLAYED_NOTE if result.replayed else None)


# A connected sign-in's grant that changed since: (title, what happened since) by today's status.
CHANGED_SINCE: dict[str, tuple[str, str]] = {
    ConnectionStatus.NOT_CONNECTED: ("Strava is no longer connected",
                                     "it was disconnected, so FitGlue no longer uses Strava for this account."),
    ConnectionStatus.NEEDS_REAUTH: ("Strava needs re-authorization", "Strava stopped accepting FitGlue's access."),
    ConnectionStatus.REVOKED: ("FitGlue's access to Strava was revoked",
                               "FitGlue's access was removed in Strava's settings."),
    ConnectionStatus.CONNECTED: ("Strava was connected again since", "Strava was connected again, with another grant."),
}


def _what_next(result: connect.CallbackResult, current: connect.ConnectionNow) -> tuple[list[str], str | None]:
    """(steps, retry URL) for the connection as it stands now."""
    label, _css, note = status_view(current.status, current.verdict)
    if connect.fully_connected(current.status, current.verdict):
        return [f"Strava's status now: {label}. There is nothing more to do; you can close this page."], None
    steps = [f"Strava's status now: {label}.", *([note] if note else [])]
    if result.retry_url:
        steps.append("To connect again, press Try again and leave every box ticked on Strava's page.")
    else:
        steps.append("Ask FitGlue support for a new Connect link: the one you used cannot be used again.")
    return steps, result.retry_url


def _changed_since_page(request: web.Request, result: connect.CallbackResult,
                        current: connect.ConnectionNow) -> web.Response:
    """A connected sign-in shown again after its grant changed: what it did, then how Strava is now."""
    title, since = CHANGED_SINCE.get(current.status, (f"Strava's status changed: {current.status}", ""))
    verdict = result.verdict
    then = "with every permission FitGlue needs" if verdict is None or verdict.complete else \
        "without " + ", ".join(verdict.missing_scopes)
    steps, retry_url = _what_next(result, current)
    return render(request, "problem.html", result.http_status, title=title,
                  message=f"This sign-in connected Strava to the FitGlue account {result.email or 'you used'} "
                          f"{then}. Since then, {since}",
                  steps=steps, retry_url=retry_url, note=_REPLAYED_NOTE if result.replayed else None)


def _result_page(request: web.Request, result: connect.CallbackResult) -> web.Response:
    current = result.current
    if result.connected:
        if current is not None and current.changed:
            return _changed_since_page(request, result, current)
        return _connected_page(request, result)
    title, message, steps = problem_texts(result)
    retry_url = result.retry_url
    if current is not None and current.changed:
        # This sign-in connected nothing, but another one (a tab, a newer link) did: say how it stands.
        message += " Strava is connected to this FitGlue account now, by another sign-in."
        steps, retry_url = _what_next(result, current)
    return render(request, "problem.html", result.http_status, title=title, message=message, steps=steps,
                  retry_url=retry_url, note=_REPLAYED_NOTE if result.replayed else None)


async def oauth_callback(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    params = {key: request.query.get(key, "") for key in ("state", "code", "scope", "error")}
    browser_secret = same_origin.read_browser_cookie(request, rt.settings, COOKIE)
    result = await connect.settle_callback(rt, params, browser_secret)
    # The cookie stays: a reload (or back, or a restored tab) shows this browser the same outcome.
    # (The on_connected hooks, e.g. "ensure the push subscription", are complete_connect's.)
    return _result_page(request, result)
