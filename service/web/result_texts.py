"""What the OAuth callback's result pages say: the Strava account a sign-in used, and the title,
message and steps of each outcome that did not connect."""

from __future__ import annotations

from service.desk import connect_ops as connect
from troubleshooting.vocabulary import AttemptOutcome


def strava_account(result: connect.CallbackResult) -> str | None:
    """The Strava account a sign-in used, by the name Strava gave and its athlete number; nothing more
    (no token, no other id). None when the callback did not learn it."""
    if result.athlete_id is None:
        return None
    if result.athlete_name:
        return f"{result.athlete_name} (Strava athlete {result.athlete_id})"
    return f"Strava athlete {result.athlete_id}"


def _conflict_message(result: connect.CallbackResult) -> str:
    account = strava_account(result)
    used = f"You signed in to Strava as {account}. That Strava account" if account else \
        "The Strava account you signed in with"
    return f"{used} is already connected to another FitGlue account, so nothing was changed."


def problem_texts(result: connect.CallbackResult) -> tuple[str, str, list[str]]:
    """(title, message, steps) for an outcome that did not connect."""
    if result.outcome == connect.ALREADY_FINISHED:
        return ("This sign-in has already finished",
                "Only the browser that started a sign-in can show its result, and this browser cannot. "
                "Nothing was changed now.",
                ["To see whether Strava is connected, open the Connect link you were sent: it tells you, or says "
                 "it was used up because Strava was connected with it.",
                 "If you are unsure, or the link has expired, ask FitGlue support."])
    if result.outcome == AttemptOutcome.PENDING:
        return ("Still finishing",
                "FitGlue is still finishing this sign-in, or it was interrupted before it could finish.",
                ["Reload this page in a minute.",
                 "If it still shows this page, start again from your Connect link."])
    if result.outcome == AttemptOutcome.STATE_INVALID and not result.proven_browser:
        return ("This sign-in could not be completed",
                f"FitGlue could not match Strava's answer to a sign-in started in this browser "
                f"({result.reason or 'unknown reason'}), so nothing was changed.",
                ["Go back to the browser or app where you opened your Connect link, and connect from there.",
                 "If your browser blocks cookies, allow them for this site.",
                 "Or open your Connect link in this browser and start again; if you do not have it any more, "
                 "ask FitGlue support for a new one."])
    pages: dict[str, tuple[str, str, list[str]]] = {
        AttemptOutcome.DENIED: (
            "Strava was not connected",
            "You chose not to give FitGlue access on Strava's page, so nothing was connected.",
            ["If you do want to connect, press Try again and choose Authorize on Strava's page."]),
        AttemptOutcome.ATHLETE_CONFLICT: (
            "Signed in to a different Strava account",
            _conflict_message(result),
            ["Check which Strava account your browser is signed in to: sign out of Strava, or use a "
             "private (incognito) window, and sign in with the account that belongs to you.",
             "If this Strava account really is yours, contact FitGlue support."]),
        AttemptOutcome.STATE_INVALID: (
            "This sign-in could not be completed",
            f"FitGlue could not finish this sign-in ({result.reason or 'unknown reason'}).",
            ["Start again from your Connect link in this same browser, and finish within 10 minutes."]),
        AttemptOutcome.APP_REJECTED: (
            "FitGlue cannot reach Strava right now",
            "Strava did not accept FitGlue's own app settings. This is on our side, not yours.",
            ["FitGlue support has been told. Please try again later or contact support."]),
    }
    return pages.get(result.outcome, (
        "Strava was not connected",
        "FitGlue could not finish connecting to Strava.",
        ["Try again from your Connect link.",
         "Make sure you are signed in to the right Strava account; a private (incognito) window helps "
         "if your browser keeps using another account.",
         "If it keeps failing, ask FitGlue support for a new link."]))
