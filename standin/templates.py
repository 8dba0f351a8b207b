"""The stand-in's HTML pages, small and self-contained. Every dynamic value is escaped."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape

from yarl import URL

from standin.event_receiver import ReceivedEvent
from standin.state import Athlete

BANNER = "Strava sandbox — not the real Strava"

SCOPE_TEXT = {
    "read": "See your public profile, segments, routes, posts and events (always granted)",
    "read_all": "See your private routes, segments and events",
    "profile:read_all": "See your whole profile, including parts only followers or you can see",
    "profile:write": "Change your weight and FTP, star and unstar segments",
    "activity:read": "See activities that everyone or your followers can see",
    "activity:read_all": "See all your activities, including Only You ones and privacy zones",
    "activity:write": "Create activities and upload files, and edit activities this app can see",
}

_STYLE = """
body{font-family:system-ui,-apple-system,sans-serif;margin:0;background:#f7f7fa;color:#222;line-height:1.45}
.banner{background:#5b2a86;color:#fff;padding:.6rem 1rem;font-weight:600;text-align:center}
main{max-width:34rem;margin:0 auto;padding:1rem}
fieldset{border:1px solid #ccc;border-radius:.5rem;margin:0 0 1rem;padding:.6rem .9rem;background:#fff}
label{display:block;padding:.35rem 0}
input[type=text]{padding:.3rem;max-width:100%}
button{font-size:1rem;padding:.6rem 1.2rem;margin:.2rem .4rem .2rem 0;border-radius:.4rem;border:1px solid #888}
button.primary{background:#fc4c02;color:#fff;border-color:#fc4c02}
table{border-collapse:collapse;width:100%;background:#fff}td,th{border:1px solid #ddd;padding:.3rem;text-align:left}
.error{border-left:4px solid #c00;padding:.4rem .8rem;background:#fff}
code{word-break:break-all}
"""


def page(title: str, body: str) -> str:
    """A whole document; ``body`` must already be escaped markup."""
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)} · {escape(BANNER)}</title><style>{_STYLE}</style></head>"
        f'<body><div class="banner" role="note">{escape(BANNER)}</div><main>{body}</main></body></html>\n'
    )


def _hidden(name: str, value: str) -> str:
    return f'<input type="hidden" name="{escape(name)}" value="{escape(value)}">'


def _athlete_options(athletes: list[Athlete], connected: set[int], new_name: tuple[str, str]) -> list[str]:
    """The "sign in as" radio buttons. Preselected: someone who can connect, never an athlete already
    connected (Authorize with them lands on "signed in to a different Strava account")."""
    options = []
    chosen = next((a.id for a in athletes if a.id not in connected), None)
    for a in athletes:
        checked = " checked" if a.id == chosen else ""
        note = " (already connected)" if a.id in connected else ""
        options.append(
            f'<label><input type="radio" name="athlete_id" value="{a.id}"{checked}> '
            f"{escape(a.firstname)} {escape(a.lastname)} · athlete {a.id}{escape(note)}</label>"
        )
    new_checked = "" if chosen is not None else " checked"
    options.append(
        f'<label><input type="radio" name="athlete_id" value="new"{new_checked}> A new sandbox athlete</label>'
        f'<label>First name <input type="text" name="firstname" value="{escape(new_name[0])}" maxlength="40"></label>'
        f'<label>Last name <input type="text" name="lastname" value="{escape(new_name[1])}" maxlength="40"></label>'
    )
    return options


def authorize_page(
    *,
    action: str,
    client_id: str,
    redirect_uri: str,
    state: str,
    scope: str,
    requested: Sequence[str],
    athletes: Iterable[Athlete],
    connected: set[int],
    new_name: tuple[str, str] = ("Sandy", "Runner"),
) -> str:
    host = URL(redirect_uri).host or redirect_uri
    options = _athlete_options(list(athletes), connected, new_name)
    boxes = []
    for s in requested:
        if s == "read":
            continue
        boxes.append(
            f'<label><input type="checkbox" name="scope_granted" value="{escape(s)}" checked> '
            f"<code>{escape(s)}</code>: {escape(SCOPE_TEXT.get(s, s))}</label>"
        )
    boxes.insert(
        0,
        '<label><input type="checkbox" checked disabled> <code>read</code>: '
        f"{escape(SCOPE_TEXT['read'])}</label>",
    )
    body = (
        f"<h1>Authorize application {escape(client_id)}</h1>"
        f"<p>This application asks to connect to a sandbox athlete. You will be sent back to "
        f"<strong>{escape(host)}</strong>.</p>"
        f'<form method="post" action="{escape(action)}">'
        + _hidden("client_id", client_id)
        + _hidden("redirect_uri", redirect_uri)
        + _hidden("state", state)
        + _hidden("scope", scope)
        + "<fieldset><legend>Sign in as</legend>"
        + "".join(options)
        + "</fieldset><fieldset><legend>Permissions you grant</legend>"
        + "".join(boxes)
        + "</fieldset>"
        '<button class="primary" type="submit" name="decision" value="approve">Authorize</button>'
        '<button type="submit" name="decision" value="deny">Cancel</button>'
        "</form>"
    )
    return page("Authorize", body)


def capacity_page(client_id: str, capacity: int) -> str:
    body = (
        '<h1>Limit of connected athletes exceeded</h1><div class="error">'
        f"<p>Application {escape(client_id)} already has as many connected athletes as it is allowed "
        f"({capacity}). Another athlete cannot connect until one disconnects or the application's "
        "capacity is raised.</p></div>"
        "<p>This is the page Strava shows in this situation: you are not sent back to the application.</p>"
    )
    return page("Limit of connected athletes exceeded", body)


def other_site_page() -> str:
    return page("Refused", '<h1>Refused</h1><div class="error"><p>This form was sent from another website, '
                "so the sandbox ignored it. Use the sandbox's own pages.</p></div>")


def bad_form_page(message: str) -> str:
    return page("Bad request", f'<h1>Bad request</h1><div class="error"><p>{escape(message)}</p></div>')


def events_table(events: Sequence[ReceivedEvent], shown: int = 50) -> str:
    """The events FitGlue sent its other services (stood in here), newest first, each with whether its
    Standard Webhooks signature verified."""
    if not events:
        return ("<h2>Events received by FitGlue's other services</h2><p>None yet: connect, add an activity or "
                "revoke access, and FitGlue's signed events arrive here.</p>")
    rows = []
    for event in list(reversed(events))[:shown]:
        check = "verified" if event.verified else f"NOT verified ({escape(event.error or '')})"
        rows.append(f"<tr><td><code>{escape(event.webhook_id)}</code></td><td>{escape(event.type)}</td>"
                    f"<td>{escape(str(event.data.get('athlete_id', '')))}</td><td>{check}</td>"
                    f"<td>{event.status}</td></tr>")
    return ("<h2>Events received by FitGlue's other services</h2><table><tr><th>webhook-id</th><th>type</th>"
            "<th>athlete</th><th>signature</th><th>answered</th></tr>" + "".join(rows) + "</table>")
