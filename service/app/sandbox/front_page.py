"""What a sandbox announces at start, printed and on the index page at `/`."""

from __future__ import annotations

from service.app.sandbox.sandbox_settings import export_line
from service.app.sandbox.session import Sandbox
from service.core.runtime import Runtime
from service.core.settings import ConfigError
from service.desk.support_desk import SupportDesk
from service.web.index_page import SandboxFrontPage

SANDBOX_EMAIL = "sandbox-athlete@example.com"
ADMIN_PATH = "/admin/api"


async def front_page(sandbox: Sandbox, desk: SupportDesk) -> SandboxFrontPage:
    """Issue the first Connect link and write the export file; everything the banner shows."""
    issued = await desk.issue_connect_link(SANDBOX_EMAIL, "sandbox")
    settings = sandbox.settings
    assert settings.admin_token is not None
    return SandboxFrontPage(
        connect_url=issued.url,
        connect_email=SANDBOX_EMAIL,
        slack_url=sandbox.slack_url,
        control_url=f"{sandbox.standin_base}/",
        admin_base=f"{settings.public_url}{ADMIN_PATH}",
        admin_token=settings.admin_token.get_secret_value(),
        export_line=export_line(settings),
        export_file=sandbox.write_export(),
    )


def follow_the_standin(sandbox: Sandbox, rt: Runtime, front: SandboxFrontPage) -> None:
    """When the stand-in's control page changes the app's athlete capacity, what the diagnosis reads
    (the service's settings), the export file and the index page change with it."""

    def capacity_changed(capacity: int | None) -> None:
        try:
            changed = rt.settings.replaced(strava_athlete_capacity=capacity)
        except ConfigError as exc:  # past FITGLUE_STRAVA_ATHLETE_CAPACITY's bound: the control answers 400
            raise ValueError(str(exc)) from None
        rt.settings = sandbox.settings = changed
        sandbox.write_export()
        front.export_line = export_line(rt.settings)

    sandbox.standin.on_capacity_change.append(capacity_changed)


BANNER_LABELS = ("Start here", "Connect link", "Local Slack", "Strava controls", "Admin API")


def read_banner(output: str) -> dict[str, str]:
    """The banner's values by label (BANNER_LABELS, plus "source" and "export"), from a sandbox's
    output: for scripts and tests that start a sandbox and drive it (./scripts/tour)."""
    found: dict[str, str] = {}
    for line in output.splitlines():
        text = line.strip()
        label, _, value = text.partition(":")
        if text.startswith("source "):
            found["source"] = text.removeprefix("source ")
        elif text.startswith("or: export "):
            found["export"] = text.removeprefix("or: ")
        elif label in BANNER_LABELS and value.strip():
            found[label] = value.split()[0]
    return found


def banner(front: SandboxFrontPage, public_url: str) -> str:
    return (
        "\n  SANDBOX: FitGlue is running against local stand-ins for Strava and Slack; nothing leaves this machine.\n"
        f"    Start here:        {public_url}/\n"
        f"    Connect link:      {front.connect_url}\n"
        f"    Local Slack:       {front.slack_url}\n"
        f"    Strava controls:   {front.control_url}\n"
        f"    Admin API:         {front.admin_base}  (bearer {front.admin_token})\n"
        "  Point the fitglue command line at this sandbox (in another shell):\n\n"
        f"    source {front.export_file}\n\n"
        f"  or: {front.export_line}\n"
    )
