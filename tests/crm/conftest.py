"""CRM tests: the storage fixtures (SQLite and PostgreSQL) and the stand-in Twenty server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from loadtest.standins.twenty_server import TwentyStandin
from tests.storage.conftest import database_url, db, pg_session_database

__all__ = ["database_url", "db", "pg_session_database", "twenty"]


@pytest.fixture
async def twenty() -> AsyncIterator[TwentyStandin]:
    async with TwentyStandin() as standin:
        yield standin
