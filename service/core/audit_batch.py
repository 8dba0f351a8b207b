"""Audit entries written in batches, off the request path, for endpoints called many times a second.

`AuditBatch.record` only queues the entry and returns. One writer task lets entries gather for
FITGLUE_AUDIT_BATCH_MS, stores whatever has queued up in ONE transaction, then looks again; while it
commits, the next batch gathers (the group commit of the webhook intake,
service.background.webhooks.intake, plus a short gathering time: calls a few milliseconds apart
would otherwise each cost a commit). So a caller never waits for the database to learn what it
asked, and a steady 200 calls a second cost about 20 commits a second, not 200.

The writer is a task of the runtime (`Runtime.spawn`): `Runtime.close` waits for it, so entries
queued before a clean shutdown are stored. A crash loses at most the entries of the last
FITGLUE_AUDIT_BATCH_MS and one write, the price of not making every caller wait. A failed write is
logged (a WARNING naming the exception type) and its entries are dropped, never retried forever.

One instance per runtime: `rt.part(AuditBatch)`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, cast

from sqlalchemy import Table, insert

from service.core.audit_log import entry_values
from service.core.runtime import Runtime
from service.db.models import AuditEntry

log = logging.getLogger(__name__)

MAX_BATCH = 500
# Core INSERT of many rows: the ORM's bulk path costs about as much again per batch.
_AUDIT = cast(Table, AuditEntry.__table__)


class AuditBatch:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self._pending: list[dict[str, Any]] = []
        self._writing = False
        self._idle = asyncio.Event()
        self._idle.set()

    def record(self, actor: str, action: str, target: str | None, result: str, detail: str | None = None,
               duration_ms: int | None = None) -> None:
        """Queue one entry (stamped now, on the runtime's clock); it is stored within milliseconds."""
        self._pending.append(entry_values(self.rt.clock, actor, action, target, result, detail, duration_ms))
        if not self._writing:
            self._writing = True
            self._idle.clear()
            self.rt.spawn(self._write_all())

    async def flush(self) -> None:
        """Return once everything queued so far is stored (or dropped after a failure)."""
        while self._pending or self._writing:
            if self._writing:
                await self._idle.wait()
            else:
                await self._write_some()

    async def _write_all(self) -> None:
        try:
            # Entries arriving a few milliseconds apart share one write instead of one each.
            await asyncio.sleep(self.rt.settings.audit_batch_ms / 1000)
            while self._pending:
                await self._write_some()
        finally:
            self._writing = False
            self._idle.set()

    async def _write_some(self) -> None:
        batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
        try:
            async with self.rt.write() as session:
                await session.execute(insert(_AUDIT), batch)
        except Exception as exc:  # the database failing must not take the callers down with it
            log.warning("could not store %d audit entr%s: %s", len(batch), "y" if len(batch) == 1 else "ies",
                        type(exc).__name__)
