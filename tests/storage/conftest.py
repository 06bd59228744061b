"""Storage fixtures: every repository and queue test runs on SQLite and PostgreSQL.

PostgreSQL tests get a database created for this test session only (a unique name
made through the ``postgres`` database) and dropped at the end, so parallel runs
never see each other's rows.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import asyncpg
import pytest
from sqlalchemy import text

from tests.tcp_proxy import TcpProxy
from voice_agent.storage.database import Database
from voice_agent.storage.migrate import upgrade
from voice_agent.storage.tables import metadata

PG_HOST = "127.0.0.1"
PG_PORT = 5432
PG_USER = "postgres"

T = TypeVar("T")


def run_in_thread(make: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine on a fresh loop in another thread: works from sync fixtures even
    while a test's event loop is running in this one."""

    async def main() -> T:
        return await make()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, main()).result()


def pg_url(database: str, port: int = PG_PORT) -> str:
    return f"postgresql://{PG_USER}@{PG_HOST}:{port}/{database}"


async def create_pg_database() -> str:
    name = f"va_storage_{os.getpid()}_{secrets.token_hex(4)}"
    conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database="postgres")
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return name


async def drop_pg_database(name: str) -> None:
    conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database="postgres")
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def pg_session_database() -> Iterator[str]:
    """Name of this session's migrated PostgreSQL database."""
    name = run_in_thread(create_pg_database)
    try:
        run_in_thread(lambda: upgrade(pg_url(name)))
        yield name
    finally:
        run_in_thread(lambda: drop_pg_database(name))


BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: os.PathLike[str]) -> str:
    """A migrated database with empty tables, on each backend."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/data/voice_agent.db"
        run_in_thread(lambda: upgrade(url))
        return url
    url = pg_url(request.getfixturevalue("pg_session_database"))

    async def empty() -> None:
        db = await Database.connect(url)
        try:
            async with db.engine.begin() as conn:
                names = ", ".join(f'"{name}"' for name in metadata.tables)
                await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        finally:
            await db.dispose()

    run_in_thread(empty)
    return url


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = await Database.connect(database_url)
    try:
        yield database
    finally:
        await database.dispose()


@pytest.fixture(params=BACKENDS)
def empty_database_url(request: pytest.FixtureRequest, tmp_path: os.PathLike[str]) -> Iterator[str]:
    """A database with no tables at all, for migration tests; PostgreSQL ones are dropped."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/fresh/voice_agent.db"
    else:
        yield from _fresh_pg_url()


@pytest.fixture
def empty_pg_url() -> Iterator[str]:
    yield from _fresh_pg_url()


def _fresh_pg_url() -> Iterator[str]:
    name = run_in_thread(create_pg_database)
    try:
        yield pg_url(name)
    finally:
        run_in_thread(lambda: drop_pg_database(name))


@pytest.fixture
async def pg_proxy() -> AsyncIterator[TcpProxy]:
    proxy = TcpProxy(PG_HOST, PG_PORT)
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.aclose()
