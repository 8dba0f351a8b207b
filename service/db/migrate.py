"""Apply Alembic migrations programmatically, under a lock so replicas starting together are safe.

PostgreSQL: a session-level advisory lock held for the whole upgrade. SQLite: an exclusive file
lock beside the database (one machine by definition).
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from service.db.engine import is_sqlite

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_PG_LOCK_ID = 0x46_47_4D_49  # "FGMI": arbitrary but fixed for every replica


class StorageError(Exception):
    """The database's storage cannot be written (read-only, missing permission, not a directory).

    `path` is the file or directory that could not be written; `reason` what the system said.
    """

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"cannot write {path}: {reason}")
        self.path = path
        self.reason = reason


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url)
    return cfg


def head_revision(url: str) -> str | None:
    return ScriptDirectory.from_config(alembic_config(url)).get_current_head()


@contextlib.contextmanager
def _sqlite_file_lock(url: str) -> Iterator[None]:
    path = url.split("///", 1)[-1] if "///" in url else ""
    if not path or path == ":memory:":
        yield
        return
    lock_path = Path(path + ".migrate.lock")
    try:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(lock_path, "a")  # noqa: SIM115 - closed below; "a": never truncates another's lock
    except FileExistsError as exc:  # mkdir: a file stands where the directory should be
        raise StorageError(lock_path.parent, "exists, but is not a directory") from exc
    except OSError as exc:
        raise StorageError(lock_path, exc.strerror or type(exc).__name__) from exc
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


async def upgrade_to_head(engine: AsyncEngine) -> None:
    url = engine.url.render_as_string(hide_password=False)
    cfg = alembic_config(url)

    def _upgrade(sync_conn: Any) -> None:
        cfg.attributes["connection"] = sync_conn
        command.upgrade(cfg, "head")

    if is_sqlite(url):
        with _sqlite_file_lock(url):
            async with engine.begin() as conn:
                await conn.run_sync(_upgrade)
        return
    async with engine.connect() as conn:
        await conn.execute(text("SELECT pg_advisory_lock(:id)"), {"id": _PG_LOCK_ID})
        await conn.commit()
        try:
            async with conn.begin():
                await conn.run_sync(_upgrade)
        finally:
            await conn.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": _PG_LOCK_ID})
            await conn.commit()


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as conn:
        return await conn.run_sync(lambda c: MigrationContext.configure(c).get_current_revision())


async def is_migrated(engine: AsyncEngine) -> bool:
    url = engine.url.render_as_string(hide_password=False)
    return await current_revision(engine) == head_revision(url)
