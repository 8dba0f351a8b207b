"""The control page (`GET /` of the stand-in), from a Jinja2 template with autoescaping. Its sections
are template blocks (`standin/html/control.html`), so another part can add one without touching the rest."""

from __future__ import annotations

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from standin import controls
from standin.standin import StravaStandin
from standin.templates import BANNER, SCOPE_TEXT, events_table

_env = Environment(loader=PackageLoader("standin", "html"), autoescape=select_autoescape(["html"]))


def render_control_page(standin: StravaStandin, done: str = "") -> str:
    now = standin.clock.now()
    state = standin.state
    return _env.get_template("control.html").render(
        banner=BANNER, done=done, base_url=standin.base_url or "", config=standin.config,
        athletes=list(state.athletes.values()), grants=state.grants,
        activities={a: sorted(state.activities_of(a), key=lambda x: x.id, reverse=True)[:3] for a in state.athletes},
        status=controls.status(standin), next_name=controls.next_default_name(standin),
        outage=standin.outage if standin.outage is not None and standin.outage.active(now) else None,
        subscription=standin.subscription, scope_text=SCOPE_TEXT, standin=standin,
        # events_table escapes every value it writes (standin/templates.py)
        events_html=Markup(events_table(standin.events.received)))  # noqa: S704
