"""App-level fixtures: a real server on loopback running the cascade pipeline against the
stand-in OpenAI API (fast: no models to load), and a PostgreSQL reachable through a
cuttable proxy."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import asyncpg
import pytest

from tests.tcp_proxy import TcpProxy
from voice_agent.demo import running_server
from voice_agent.runtime import Runtime
from voice_agent.settings import Settings

PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}


@dataclass(frozen=True)
class Served:
    settings: Settings
    runtime: Runtime

    def metric(self, name: str, **labels: str) -> float:
        value = self.runtime.metrics.registry.get_sample_value(name, labels or None)
        return 0.0 if value is None else value


@pytest.fixture
async def served(cascade_settings: Callable[..., Settings]) -> AsyncIterator[Served]:
    settings = cascade_settings()
    async with running_server(settings) as runtime:
        yield Served(settings, runtime)


@pytest.fixture
async def pg_database() -> AsyncIterator[str]:
    """A fresh, empty PostgreSQL database for one test; dropped afterwards."""
    name = f"va_app_{os.getpid()}_{secrets.token_hex(4)}"
    conn = await asyncpg.connect(database="postgres", **PG)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    try:
        yield name
    finally:
        conn = await asyncpg.connect(database="postgres", **PG)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


@pytest.fixture
async def pg_proxy() -> AsyncIterator[TcpProxy]:
    proxy = TcpProxy(str(PG["host"]), int(PG["port"]))
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.aclose()
        await asyncio.sleep(0)


@pytest.fixture
async def redis_proxy() -> AsyncIterator[TcpProxy]:
    """The real Redis behind a cuttable proxy (the server itself is never stopped)."""
    proxy = TcpProxy("127.0.0.1", 6379)
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.aclose()
