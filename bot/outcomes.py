"""Turning SupportDesk failures into a reply, the same way for commands and buttons."""

from __future__ import annotations

import logging
from collections.abc import Awaitable

from service.config import ConfigError
from service.support import SupportError
from service.users import BadEmail

from . import render
from .blocks import Reply

log = logging.getLogger(__name__)


async def attempt(work: Awaitable[Reply], what: str) -> tuple[Reply, bool]:
    """(the reply, whether the work succeeded). Expected failures are told as they are; anything else
    is logged and told vaguely (its text could hold anything)."""
    try:
        return await work, True
    except (SupportError, ConfigError, BadEmail) as exc:
        return render.failure(str(exc)), False
    except Exception:
        log.exception("Slack %s failed", what)
        return render.failure("something unexpected went wrong; the details are in the service log"), False
