from __future__ import annotations

import asyncio

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from voice_agent.storage.database import Database
from voice_agent.storage.migrate import (
    current_heads,
    downgrade,
    script_heads,
    upgrade,
    upgrade_sync,
)
from voice_agent.storage.tables import metadata

# ix_turns_text_fts is a PostgreSQL-only expression index (0003c); Alembic says on SQLite it
# cannot compare it, which is expected: there the FTS5 table stands in for it.
pytestmark = pytest.mark.filterwarnings(
    "ignore:autogenerate skipping metadata-specified expression-based index:UserWarning"
)


def _not_fts5(name: str | None, type_: str, parent_names: object) -> bool:
    # SQLite's full-text index (migration 0003c) is an FTS5 virtual table plus the shadow
    # tables FTS5 makes for itself (turns_fts_data, _idx, _docsize, _config); SQLAlchemy has
    # no construct for them, so tables.py cannot declare them. Search tests cover them.
    return not (type_ == "table" and name is not None and name.startswith("turns_fts"))


def _schema_differences(conn: Connection) -> list[object]:
    context = MigrationContext.configure(
        conn, opts={"compare_type": True, "include_name": _not_fts5}
    )
    return list(compare_metadata(context, metadata))


def _table_names(conn: Connection) -> set[str]:
    return set(inspect(conn).get_table_names())


async def _inspect(url: str) -> tuple[set[str], list[object]]:
    db = await Database.connect(url)
    try:
        async with db.engine.connect() as conn:
            return await conn.run_sync(_table_names), await conn.run_sync(_schema_differences)
    finally:
        await db.dispose()


async def test_upgrade_from_zero_twice_matches_tables(empty_database_url: str) -> None:
    assert await current_heads(empty_database_url) == set()
    await upgrade(empty_database_url)
    await upgrade(empty_database_url)  # second start: nothing to do, no error
    assert await current_heads(empty_database_url) == script_heads()
    tables, differences = await _inspect(empty_database_url)
    assert {"calls", "turns", "tenants", "alembic_version"} <= tables
    # The hand-written migration and tables.py describe the same schema.
    assert differences == []


async def test_downgrade_then_upgrade_again(empty_database_url: str) -> None:
    await upgrade(empty_database_url)
    await downgrade(empty_database_url)
    tables, _ = await _inspect(empty_database_url)
    assert tables <= {"alembic_version"}
    await upgrade(empty_database_url)
    assert await current_heads(empty_database_url) == script_heads()


@pytest.mark.postgres
async def test_concurrent_upgrades_on_postgres_serialise(empty_pg_url: str) -> None:
    # Separate engines, separate sessions: as two workers starting at the same moment.
    await asyncio.gather(*(upgrade(empty_pg_url) for _ in range(4)))
    assert await current_heads(empty_pg_url) == script_heads()
    _, differences = await _inspect(empty_pg_url)
    assert differences == []


def test_sync_wrapper_outside_an_event_loop(empty_database_url: str) -> None:
    upgrade_sync(empty_database_url)
    assert asyncio.run(current_heads(empty_database_url)) == script_heads()


async def test_unknown_scheme_fails_before_touching_anything() -> None:
    with pytest.raises(ValueError, match="'oracle'"):
        await upgrade("oracle://scott@db/orcl")
