"""The scripted tour (`./scripts/tour`): a sandbox driven through the help article's cases in a headless
Chromium, from the user's Connect pages, the local Slack page and the Strava stand-in's controls. Each
step saves a small screenshot as docs/tour/NN-name.png.

The cases: 1 connect; 2 partial permissions; 3 wrong account; 4 capacity reached; 5 revoke in
Strava's settings; 6 rate-limit exhaustion; 7 webhook lost and re-registered from the Slack button.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from playwright.async_api import Page, async_playwright

from service.app.sandbox.front_page import read_banner

ROOT = Path(__file__).resolve().parents[1]
VIEWPORT = {"width": 900, "height": 640}
MEMBER = "sandbox-athlete@example.com"  # a member of the local Slack workspace: links reach them by DM


class Tour:
    def __init__(self, page: Page, shown: dict[str, str], out: Path) -> None:
        self.page, self.shown, self.out = page, shown, out
        self.slack = shown["Local Slack"].rstrip("/")
        self.controls = shown["Strava controls"].rstrip("/")
        self.admin, self.token = shown["Admin API"], _exported(shown["export"])["FITGLUE_ADMIN_TOKEN"]

    # -- helpers ----------------------------------------------------------------------------------
    async def shot(self, name: str, *, bottom: bool = False, showing: str | None = None) -> None:
        """Save the viewport; ``bottom``: scrolled to the newest message; ``showing``: to that text."""
        if bottom:  # the newest message, from its top
            await self.page.locator(".message").last.evaluate("e => e.scrollIntoView({block: 'start'})")
        if showing:  # a message replaced in place, higher up in the channel
            await self.page.locator(f"text={showing}").last.evaluate("e => e.scrollIntoView({block: 'start'})")
        path = self.out / f"{name}.png"
        await self.page.screenshot(path=str(path))
        print(f"  saved {path.relative_to(ROOT)}", flush=True)

    async def slack_command(self, text: str, wait_for: str) -> None:
        await self.page.goto(f"{self.slack}/?c=C0SUPPORT")
        await self.page.fill("#message-box", text)
        await self.page.click("#send")
        try:
            await self.page.locator(".message").last.locator(f"text={wait_for}").first.wait_for()
        except Exception:
            await self.page.screenshot(path=str(self.out.parent / "tour-failed.png"), full_page=True)
            raise

    async def control(self, path: str, **params: Any) -> Any:
        return await asyncio.to_thread(_post_json, f"{self.controls}{path}", params, {"Accept": "application/json"})

    async def diagnosis(self, who: str) -> dict[str, Any]:
        return await asyncio.to_thread(_get_json, f"{self.admin}/users/{who}/diagnosis",
                                       {"Authorization": f"Bearer {self.token}"})

    async def until_finding(self, who: str, finding: str, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while finding not in [f["id"] for f in (await self.diagnosis(who))["findings"]]:
            if time.monotonic() > deadline:
                raise SystemExit(f"tour: {who} never showed {finding}")
            await asyncio.sleep(0.5)

    async def link_from_slack(self, email: str) -> str:
        """`/fitglue link EMAIL` in the support channel; the link the agent is given to pass on."""
        await self.slack_command(f"/fitglue link {email}", "Connect link for")
        return str(await self.page.locator(f"a:has-text('Connect link for {email}')").last.get_attribute("href"))

    async def consent(self, link: str, *, athlete: str | None = None, untick: tuple[str, ...] = ()) -> None:
        await self.page.goto(link)
        await self.page.click("text=Connect with Strava")
        await self.page.wait_for_selector("button:has-text('Authorize')")
        if athlete:
            await self.page.check(f"label:has-text('{athlete}') input[name=athlete_id]")
        for scope in untick:
            await self.page.uncheck(f"input[name=scope_granted][value='{scope}']")

    async def authorize(self) -> None:
        await self.page.click("button:has-text('Authorize')")
        await self.page.wait_for_selector("h1")

    # -- the cases ----------------------------------------------------------------------------------
    async def case_1_connect(self) -> None:
        await self.page.goto(self.shown["Start here"])
        await self.shot("00-index")
        await self.consent(self.shown["Connect link"])
        await self.shot("01-connect-consent")
        await self.authorize()
        await self.shot("01-connect-connected")
        await self.slack_command(f"/fitglue diagnose {MEMBER}", "Strava: connected")
        await self.shot("01-connect-diagnosis", bottom=True)

    async def case_2_partial(self) -> None:
        link = await self.link_from_slack("partial@example.com")
        await self.consent(link, untick=("activity:write",))
        await self.shot("02-partial-consent")
        await self.authorize()
        await self.shot("02-partial-result")
        await self.slack_command("/fitglue diagnose partial@example.com", "permission")
        await self.shot("02-partial-diagnosis", bottom=True)

    async def case_3_wrong_account(self) -> None:
        link = await self.link_from_slack("second@example.com")
        await self.consent(link, athlete="Sandy Runner")  # the account the first user connected
        await self.authorize()
        await self.shot("03-wrong-account-result")
        await self.slack_command("/fitglue diagnose second@example.com", "Strava:")
        await self.shot("03-wrong-account-diagnosis", bottom=True)

    async def case_4_capacity(self) -> None:
        connected = len([a for a in (await asyncio.to_thread(_get_json, f"{self.controls}/sandbox/status", {}))
                         ["athletes"] if a["connected"]])
        await self.page.goto(f"{self.controls}/")
        await self.page.fill("input[name=capacity]", str(connected))
        await self.page.click("#set-capacity")
        await self.page.wait_for_selector("#done")
        await self.shot("04-capacity-controls")
        link = await self.link_from_slack("third@example.com")
        await self.consent(link)
        await self.authorize()
        await self.shot("04-capacity-strava-refuses")
        await self.until_finding("third@example.com", "app_capacity_reached")  # the count is kept 30 s
        await self.slack_command("/fitglue diagnose third@example.com", "capacity")
        await self.shot("04-capacity-diagnosis", bottom=True)
        await self.control("/sandbox/capacity", capacity=10)

    async def case_5_revoke(self) -> None:
        athlete = (await self.diagnosis(MEMBER))["athlete_id"]
        await self.page.goto(f"{self.controls}/")
        await self.page.click(f"#athlete-{athlete} button:text-is('Revoke access')")
        await self.page.wait_for_selector("#done")
        await self.shot("05-revoke-controls")
        await self.until_finding(MEMBER, "revoked")
        await self.slack_command(f"/fitglue diagnose {MEMBER}", "revoked")
        await self.shot("05-revoke-diagnosis", bottom=True)
        await self.page.locator(".message").last.locator("button:has-text('Send Connect link')").click()
        await self.page.wait_for_selector("text=a Connect link by direct message")
        await self.shot("05-revoke-link-sent", showing="a Connect link by direct message")
        await self.page.click("text=Sandy (FitGlue user)")
        await self.page.wait_for_selector("a.btn:has-text('Connect with Strava')")
        await self.shot("05-revoke-dm", bottom=True)

    async def case_6_rate_limit(self) -> None:
        athlete = (await self.diagnosis("partial@example.com"))["athlete_id"]
        await self.page.goto(f"{self.controls}/")
        await self.page.click("#exhaust-15min")
        await self.page.wait_for_selector("#done")
        await self.shot("06-rate-limit-controls")
        await self.control(f"/sandbox/athletes/{athlete}/activities")  # FitGlue must fetch it: 429
        await self.until_finding("partial@example.com", "rate_limited")
        await self.slack_command("/fitglue ratelimit", "15")
        await self.shot("06-rate-limit-slack", bottom=True)

    async def case_7_webhook(self) -> None:
        await self.page.goto(f"{self.controls}/")
        await self.page.click("#delete-subscription")
        await self.page.wait_for_selector("#done")
        await self.until_finding("partial@example.com", "webhook_missing")  # once the last live look expires
        await self.slack_command("/fitglue diagnose partial@example.com", "push subscription")
        await self.shot("07-webhook-missing", bottom=True)
        await self.page.locator(".message").last.locator("a.btn:has-text('Re-register webhook')").click()
        await self.page.wait_for_selector("#confirm")
        await self.shot("07-webhook-confirm")
        await self.page.click("#confirm")
        await self.page.wait_for_selector("text=checked and repaired")
        await self.shot("07-webhook-repaired", showing="checked and repaired")


CASES = ("case_1_connect", "case_2_partial", "case_3_wrong_account", "case_4_capacity", "case_5_revoke",
         "case_6_rate_limit", "case_7_webhook")


def _exported(line: str) -> dict[str, str]:
    import shlex

    return dict(word.split("=", 1) for word in shlex.split(line)[1:])


def _get_json(url: str, headers: dict[str, str]) -> Any:
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30) as answer:
        return json.loads(answer.read())


def _post_json(url: str, body: dict[str, Any], headers: dict[str, str]) -> Any:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={**headers, "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read())


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_sandbox(workdir: Path) -> tuple[subprocess.Popen[str], Path, dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FITGLUE_", "STRAVA_", "SLACK_"))}
    env["TMPDIR"] = str(workdir)
    log = workdir / "sandbox.log"
    proc = subprocess.Popen([sys.executable, "-m", "service", "serve", "--sandbox", "--port", str(_free_port())],
                            env=env, cwd=workdir, stdout=log.open("w"), stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 60
    while "  or: export " not in log.read_text():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"tour: the sandbox did not start:\n{log.read_text()}")
        time.sleep(0.2)
    return proc, log, read_banner(log.read_text())


async def run(out: Path, chromium: str, only: list[str]) -> None:
    with tempfile.TemporaryDirectory(prefix="fitglue-tour-") as work:
        proc, log, shown = start_sandbox(Path(work))
        try:
            async with async_playwright() as pw:
                browser = await pw.chromium.launch(executable_path=chromium, args=[
                    "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"])
                page = await (await browser.new_context(viewport=VIEWPORT, device_scale_factor=1)).new_page()
                tour = Tour(page, shown, out)
                for case in CASES:
                    if not only or any(case.startswith(f"case_{n}_") for n in only):
                        print(f"{case.replace('_', ' ', 2)}", flush=True)
                        await getattr(tour, case)()
                await browser.close()
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
            if proc.returncode:
                print(log.read_text(), file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "tour"), help="where the screenshots go")
    parser.add_argument("--case", action="append", default=[], help="run only case N (repeatable)")
    args = parser.parse_args()
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(chromium).exists():
        raise SystemExit("tour: Debian's chromium is needed (scripts/ensure-chromium installs it)")
    Path(args.out).mkdir(parents=True, exist_ok=True)
    asyncio.run(run(Path(args.out), chromium, args.case))


if __name__ == "__main__":
    main()
