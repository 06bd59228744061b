"""Alembic environment for both the in-code runner (migrate.py) and the alembic CLI.

migrate.py hands over an open connection (already holding the PostgreSQL advisory
lock) in ``config.attributes["connection"]``; the CLI path builds its own async
engine from ``sqlalchemy.url`` or DATABASE_URL.
"""

from __future__ import annotations

import asyncio
import os

from alembic import context
from sqlalchemy import pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from voice_agent.storage.tables import metadata
from voice_agent.storage.urls import async_url

config = context.config


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        compare_type=True,
        # SQLite cannot ALTER most things; batch mode rebuilds tables when a future
        # migration needs it.
        render_as_batch=connection.dialect.name == "sqlite",
    )


def _run_with(connection: Connection) -> None:
    _configure(connection)
    with context.begin_transaction():
        context.run_migrations()


def _configured_url() -> str:
    url = config.get_main_option("sqlalchemy.url") or os.environ.get("DATABASE_URL")
    if not url:
        raise RuntimeError("set sqlalchemy.url or DATABASE_URL to run migrations")
    return async_url(url)


async def _run_online_standalone() -> None:
    engine = create_async_engine(_configured_url(), poolclass=pool.NullPool)
    try:
        async with engine.connect() as conn:
            await conn.run_sync(_run_with)
            await conn.commit()
    finally:
        await engine.dispose()


def run_offline() -> None:
    context.configure(
        url=_configured_url(),
        target_metadata=metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_with(connection)
    else:
        asyncio.run(_run_online_standalone())


if context.is_offline_mode():
    run_offline()
else:
    run_online()
