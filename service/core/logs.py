"""Logging per FITGLUE_LOG_LEVEL / FITGLUE_LOG_FORMAT, with a last-line-of-defence secret scrubber."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from aiohttp.http_exceptions import BadHttpMessage
from aiohttp.web import RequestPayloadError

from service.core.redact import scrub_text

# aiohttp's server logs a request it cannot parse (a request line over its limit, a broken header)
# at ERROR with a traceback, although it answers the client 400 and nothing of ours ran.
SERVER_LOGGER = "aiohttp.server"


class SecretScrubber(logging.Filter):
    """Scrubs every record's final message, whatever code produced it."""

    def __init__(self, secrets: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        message = scrub_text(record.getMessage(), self.secrets)
        record.msg, record.args = message, None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = scrub_text(logging.Formatter().formatException(record.exc_info), self.secrets)
            record.exc_info = None
        return True


class ClientProtocolErrors(logging.Filter):
    """On aiohttp's server logger: a client's malformed HTTP (BadHttpMessage and its subclasses:
    LineTooLong, BadStatusLine, InvalidHeader…), or a body that does not decode while aiohttp drops
    what was left unread of it, becomes one INFO line without a traceback. Bad input from a client
    is not our error; everything else passes unchanged."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, RequestPayloadError) and isinstance(exc.__cause__, BadHttpMessage):
            # A body already answered (413 before it was all read) that fails to decode (gzip that is
            # not, or inflates past aiohttp's own cap) while aiohttp reads and drops the rest of it.
            self._quieten(record, "dropped the rest of a request body that did not decode: %s: %s", exc.__cause__)
        elif isinstance(exc, BadHttpMessage):
            self._quieten(record, "refused malformed HTTP from a client (400): %s: %s", exc)
        return True

    @staticmethod
    def _quieten(record: logging.LogRecord, message: str, exc: BaseException) -> None:
        # The exception's text may quote the whole offending line: keep only its start.
        detail = str(exc).replace("\n", " ")
        record.msg = message
        record.args = (type(exc).__name__, detail if len(detail) <= 120 else detail[:117] + "...")
        record.levelno, record.levelname = logging.INFO, "INFO"
        record.exc_info, record.exc_text = None, None


def quiet_client_protocol_errors() -> None:
    """Install ClientProtocolErrors on aiohttp's server logger (idempotent)."""
    server = logging.getLogger(SERVER_LOGGER)
    if not any(isinstance(f, ClientProtocolErrors) for f in server.filters):
        server.addFilter(ClientProtocolErrors())


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat().replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry)


def configure_logging(level: str = "INFO", fmt: str = "text", secrets: tuple[str, ...] = ()) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(SecretScrubber(secrets))
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # Bolt logs whole request bodies (e-mails) at INFO on a bad signature; aiohttp's access log
    # prints query strings (link tokens, OAuth codes). Neither belongs in our logs.
    logging.getLogger("slack_bolt").setLevel(max(logging.WARNING, root.level))
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    quiet_client_protocol_errors()
    # The scheduler announces every run of every job at INFO: noise, not news.
    logging.getLogger("apscheduler").setLevel(max(logging.WARNING, root.level))
