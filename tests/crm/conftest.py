"""CRM tests: the storage fixtures (SQLite and PostgreSQL) and the stand-in Twenty server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from loadtest.standins.twenty_server import TwentyStandin
from tests.outbound.conftest import clock, outbound_settings, serve, twilio
from tests.storage.conftest import database_url, db, pg_session_database

__all__ = [
    "clock",
    "database_url",
    "db",
    "outbound_settings",
    "pg_session_database",
    "serve",
    "twenty",
    "twilio",
]


@pytest.fixture
async def twenty() -> AsyncIterator[TwentyStandin]:
    async with TwentyStandin() as standin:
        yield standin
