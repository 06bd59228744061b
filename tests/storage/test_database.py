from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text

from voice_agent.storage.database import Database, DatabaseUnavailable

from .conftest import pg_url


async def test_ping_answers(db: Database) -> None:
    await db.ping()
    assert db.dialect in ("sqlite", "postgresql")


async def test_sqlite_connections_use_wal_and_foreign_keys(tmp_path: Path) -> None:
    db = await Database.connect(f"sqlite:///{tmp_path}/x.db")
    try:
        async with db.engine.connect() as conn:
            assert (await conn.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
            assert (await conn.execute(text("PRAGMA foreign_keys"))).scalar() == 1
    finally:
        await db.dispose()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.postgres
async def test_ping_fails_fast_when_nothing_listens() -> None:
    db = await Database.connect(pg_url("postgres", port=_free_port()))
    try:
        started = time.monotonic()
        with pytest.raises(DatabaseUnavailable, match="unavailable"):
            await db.ping()
        assert time.monotonic() - started < 1.0
    finally:
        await db.dispose()


@pytest.fixture
async def silent_server() -> AsyncIterator[int]:
    """Accepts TCP connections and never says a word: a hung database host."""
    held: list[asyncio.StreamWriter] = []

    async def accept(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        held.append(w)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for w in held:
            w.transport.abort()
        await server.wait_closed()


async def test_ping_times_out_on_a_silent_host(silent_server: int) -> None:
    db = await Database.connect(pg_url("postgres", port=silent_server), ping_timeout=0.3)
    try:
        started = time.monotonic()
        with pytest.raises(DatabaseUnavailable, match=r"within 0\.3 s"):
            await db.ping()
        assert time.monotonic() - started < 1.5
    finally:
        await db.dispose()


async def test_unwritable_sqlite_directory_is_a_clear_error() -> None:
    # /proc/1 exists and refuses writes even to root, unlike a chmod'ed temp directory.
    with pytest.raises(PermissionError, match="directory /proc/1 is not writable"):
        await Database.connect("sqlite:////proc/1/voice_agent.db")


async def test_uncreatable_sqlite_directory_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(OSError, match="cannot create the SQLite database directory"):
        await Database.connect(f"sqlite:///{tmp_path}/file/db/voice_agent.db")


async def test_bad_url_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unsupported database scheme 'mysql'"):
        await Database.connect("mysql://root@localhost/va")
