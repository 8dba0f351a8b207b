"""`GET /` in every mode: production names the service in one line (no links, no data); the sandbox's
index is tested end to end (tests/e2e/test_sandbox_lifecycle.py, tests/browser/test_sandbox_pages.py)."""

from __future__ import annotations

from service.app.cli import main
from service.app.factory import build_app


async def test_production_index_is_one_line_naming_the_service(aiohttp_client, runtime):
    client = await aiohttp_client(build_app(runtime, background=False))
    answer = await client.get("/")
    text = await answer.text()
    assert answer.status == 200 and answer.content_type == "text/plain"
    assert text.count("\n") == 1 and "FitGlue" in text
    assert "http" not in text and "<a" not in text and "@" not in text


def test_serve_without_configuration_names_the_sandbox(monkeypatch, tmp_path, capsys):
    monkeypatch.chdir(tmp_path)  # no .env
    for name in ("FITGLUE_SECRET_KEY", "STRAVA_CLIENT_ID", "STRAVA_CLIENT_SECRET", "STRAVA_WEBHOOK_VERIFY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    assert main(["serve", "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert "STRAVA_CLIENT_ID" in err and "fitglue serve --sandbox" in err


async def test_the_sandbox_index_shows_its_secrets_only_to_loopback_names(aiohttp_client, runtime):
    """The sandbox's `/` holds the admin token and FITGLUE_SECRET_KEY (the export line). A website that
    rebinds its own name to 127.0.0.1 (DNS rebinding) could read it; it gets the one-line page instead."""
    from service.web.index_page import SANDBOX_FRONT_PAGE, SandboxFrontPage

    runtime.settings = runtime.settings.replaced(sandbox=True)
    app = build_app(runtime, background=False)
    app[SANDBOX_FRONT_PAGE] = SandboxFrontPage(
        "http://localhost:8080/connect/strava?t=x", "a@example.com", "http://127.0.0.1:1/", "http://127.0.0.1:2/",
        "http://localhost:8080/admin/api", "admin-token-on-the-index", "export FITGLUE_SECRET_KEY=secret-on-the-index",
        "/tmp/x/sandbox.env")
    client = await aiohttp_client(app)
    for host in ("rebind.attacker.example", "rebind.attacker.example:8080", "192.168.1.5:8080"):
        text = await (await client.get("/", headers={"Host": host})).text()
        assert "admin-token-on-the-index" not in text and "secret-on-the-index" not in text, host
        assert text.count("\n") == 1 and "FitGlue" in text
    shown = await (await client.get("/", headers={"Host": "localhost:8080"})).text()
    assert "admin-token-on-the-index" in shown and "secret-on-the-index" in shown
