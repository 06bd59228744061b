"""Apply the Alembic migrations from code: no alembic.ini, safe to run at every start."""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import pool, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from voice_agent.storage.urls import async_url

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

# One fixed key per application: every process that migrates this schema queues on it.
_ADVISORY_LOCK_KEY = zlib.crc32(b"voice_agent.storage.migrate")


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


async def upgrade(database_url: str, revision: str = "heads") -> None:
    """Bring the schema to ``revision``. Idempotent; concurrent callers on PostgreSQL wait
    for each other on an advisory lock, and the second one finds nothing to do.

    "heads", not "head": features add their tables as branches off a shared revision, and
    every branch is applied without a merge revision tying them together."""
    await _run(database_url, lambda config: command.upgrade(config, revision))


async def downgrade(database_url: str, revision: str = "base") -> None:
    await _run(database_url, lambda config: command.downgrade(config, revision))


async def current_heads(database_url: str) -> set[str]:
    """The revisions the database is at (one per migration branch); empty before the first."""
    from alembic.runtime.migration import MigrationContext

    def read(connection: Connection) -> set[str]:
        return set(MigrationContext.configure(connection).get_current_heads())

    engine = create_async_engine(async_url(database_url), poolclass=pool.NullPool)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(read)
    finally:
        await engine.dispose()


def script_heads() -> set[str]:
    """The newest revision of every migration branch shipped with this code."""
    from alembic.script import ScriptDirectory

    return set(ScriptDirectory.from_config(alembic_config()).get_heads())


def upgrade_sync(database_url: str, revision: str = "heads") -> None:
    """For the CLI and other code outside an event loop."""
    asyncio.run(upgrade(database_url, revision))


async def _run(database_url: str, action: Callable[[Config], object]) -> None:
    engine = create_async_engine(async_url(database_url), poolclass=pool.NullPool)
    try:
        # One transaction around lock and migrations: PostgreSQL DDL is transactional, the
        # xact lock is released by the commit, and a crash leaves no half-applied revision.
        async with engine.begin() as conn:
            await _lock(conn)
            await conn.run_sync(_apply, action)
    finally:
        await engine.dispose()


async def _lock(conn: AsyncConnection) -> None:
    if conn.dialect.name == "postgresql":
        await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK_KEY})


def _apply(connection: Connection, action: Callable[[Config], object]) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    action(config)
