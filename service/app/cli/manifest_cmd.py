"""`fitglue manifest`: the Slack app manifest for the running configuration (public URL filled in;
Socket Mode, and no request URLs, when SLACK_APP_TOKEN is set)."""

from __future__ import annotations

import argparse
import sys

from service.app.cli.output import EXIT_OK, fail
from service.app.wiring import slack_manifest
from service.core.settings import ConfigError, load_settings


def cmd_manifest(args: argparse.Namespace) -> int:
    try:
        settings = load_settings()
    except ConfigError as exc:
        return fail("configuration", str(exc), False)
    if not settings.slack_app_token and not settings.public_url.startswith("https://"):
        # Standard output stays the manifest alone, so `fitglue manifest > app.yml` still works.
        print(f"warning: FITGLUE_PUBLIC_URL is {settings.public_url}, but Slack only sends requests to https:// "
              "URLs; use an HTTPS public URL (or Socket Mode, with SLACK_APP_TOKEN) before installing the app",
              file=sys.stderr)
    print(slack_manifest(settings), end="")
    return EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:
    manifest = sub.add_parser("manifest", help="print the Slack app manifest for this configuration")
    manifest.set_defaults(handler=cmd_manifest)
