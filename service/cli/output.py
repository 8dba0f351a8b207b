"""Printing results and failures the same way for every command."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from ..config import ConfigError, Settings, load_settings
from ..runtime import Runtime, open_runtime
from ..support import SupportDesk, SupportError
from ..users import BadEmail

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def emit(data: Any, as_json: bool, text: str | None = None) -> None:
    if as_json:
        print(json.dumps(data, indent=2, sort_keys=False))
    elif text is not None:
        print(text)


def fail(code: str, message: str, as_json: bool, exit_code: int) -> int:
    if as_json:
        print(json.dumps({"error": code, "message": message}))
    else:
        print(f"error: {message}", file=sys.stderr)
    return exit_code


def run_with_desk(args: Any, body: Callable[[SupportDesk, Runtime], Awaitable[int]],
                  settings: Settings | None = None) -> int:
    """Open the runtime (database + Strava client), run `body`, map failures to exit codes."""
    as_json = bool(getattr(args, "json", False))

    async def go() -> int:
        rt = await open_runtime(settings or load_settings())
        try:
            return await body(SupportDesk(rt), rt)
        finally:
            await rt.close()

    try:
        return asyncio.run(go())
    except ConfigError as exc:
        return fail("configuration", str(exc), as_json, EXIT_USAGE)
    except SupportError as exc:
        return fail(exc.code, str(exc), as_json, exc.exit_code)
    except BadEmail as exc:
        return fail("bad_email", str(exc), as_json, EXIT_USAGE)
