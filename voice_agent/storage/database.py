"""The async engine and its lifecycle: one Database per process, shared by repositories."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from voice_agent.storage.urls import async_url, sqlite_path


class DatabaseUnavailable(RuntimeError):
    """The database did not answer (down, unreachable, too slow, or refusing us)."""


class Database:
    def __init__(self, engine: AsyncEngine, *, ping_timeout: float = 2.0) -> None:
        self._engine = engine
        self._ping_timeout = ping_timeout

    @classmethod
    async def connect(
        cls,
        database_url: str,
        *,
        pool_size: int = 10,
        max_overflow: int = 10,
        pool_timeout: float = 10.0,
        connect_timeout: float = 5.0,
        sqlite_busy_timeout: float = 15.0,
        ping_timeout: float = 2.0,
        echo: bool = False,
    ) -> Database:
        """Build the engine. Connections open lazily, so this succeeds while PostgreSQL is
        down (call ``ping`` to check); a bad URL or unusable SQLite directory fails here."""
        url = async_url(database_url)
        options: dict[str, Any] = {"echo": echo}
        path = sqlite_path(url)
        if url.startswith("sqlite"):
            # No pre-ping: a SQLite file cannot drop a connection, and each ping is one more
            # round trip through aiosqlite's thread on every checkout.
            if path is not None:
                _check_sqlite_writable(path)
            options["connect_args"] = {"timeout": sqlite_busy_timeout}
        else:
            options.update(
                pool_pre_ping=True,
                pool_size=pool_size,
                max_overflow=max_overflow,
                pool_timeout=pool_timeout,
                # pre-ping replaces connections killed by a database restart; the connect
                # timeout bounds how long a write waits on an unreachable host.
                connect_args={
                    "timeout": connect_timeout,
                    "server_settings": {"application_name": "voice-agent"},
                },
            )
        engine = create_async_engine(url, **options)
        if engine.dialect.name == "sqlite":
            event.listen(engine.sync_engine, "connect", _sqlite_on_connect)
        return cls(engine, ping_timeout=ping_timeout)

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    @property
    def dialect(self) -> str:
        """The dialect name: ``sqlite`` or ``postgresql``."""
        return self._engine.dialect.name

    async def ping(self) -> None:
        """Round-trip ``SELECT 1``; raises DatabaseUnavailable on any failure or when it takes
        longer than ``ping_timeout`` (readiness probes must answer fast, not hang)."""
        timeout = self._ping_timeout
        try:
            async with asyncio.timeout(timeout):
                async with self._engine.connect() as conn:
                    await conn.execute(text("SELECT 1"))
        except TimeoutError as exc:
            raise DatabaseUnavailable(f"database did not answer within {timeout:g} s") from exc
        except Exception as exc:
            raise DatabaseUnavailable(f"database unavailable: {_first_line(exc)}") from exc

    async def dispose(self) -> None:
        await self._engine.dispose()


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        # WAL lets the dashboard read while the write queue writes; NORMAL sync is
        # durable across process crashes in WAL mode and much cheaper than FULL.
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        # Off by default in SQLite; turns rely on ON DELETE CASCADE.
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


def _check_sqlite_writable(path: os.PathLike[str] | str) -> None:
    # SQLite only reports "unable to open database file" on first use; say which path and why.
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if os.path.exists(path):
        if not os.access(path, os.R_OK | os.W_OK):
            raise PermissionError(f"SQLite database file {path} is not readable and writable")
    # WAL needs to create -wal and -shm files next to the database, even when it exists.
    if not os.access(directory, os.W_OK | os.X_OK):
        raise PermissionError(f"SQLite database directory {directory} is not writable")


def _first_line(exc: BaseException) -> str:
    message = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {message[0]}" if message else type(exc).__name__
