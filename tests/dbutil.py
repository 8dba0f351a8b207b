"""Test databases: a fresh SQLite file, or a fresh PostgreSQL database when FITGLUE_TEST_DB=postgres."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg

PG_ADMIN_DSN = os.environ.get("FITGLUE_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")


def backend() -> str:
    return os.environ.get("FITGLUE_TEST_DB", "sqlite")


@asynccontextmanager
async def fresh_database_url(tmp_path: Path) -> AsyncIterator[str]:
    if backend() != "postgres":
        yield f"sqlite+aiosqlite:///{tmp_path / 'fitglue.db'}"
        return
    name = f"fitglue_t_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    try:
        yield f"{base}/{name}"
    finally:
        admin = await asyncpg.connect(PG_ADMIN_DSN)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()
