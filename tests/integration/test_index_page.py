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
