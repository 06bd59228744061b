"""dashboard: full-text search over turns (PostgreSQL GIN index, SQLite FTS5 kept by triggers)

Revision ID: 0003c
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003c"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# SQLite: an external-content FTS5 table reads the text from turns itself; the triggers keep
# its index in step with every insert, upsert and (cascaded) delete of a turn.
_SQLITE_UP = (
    "CREATE VIRTUAL TABLE turns_fts USING fts5("
    "text, content='turns', content_rowid='id', tokenize='porter unicode61')",
    "CREATE TRIGGER turns_fts_ai AFTER INSERT ON turns BEGIN "
    "INSERT INTO turns_fts(rowid, text) VALUES (new.id, new.text); END",
    "CREATE TRIGGER turns_fts_ad AFTER DELETE ON turns BEGIN "
    "INSERT INTO turns_fts(turns_fts, rowid, text) VALUES ('delete', old.id, old.text); END",
    "CREATE TRIGGER turns_fts_au AFTER UPDATE OF text ON turns BEGIN "
    "INSERT INTO turns_fts(turns_fts, rowid, text) VALUES ('delete', old.id, old.text); "
    "INSERT INTO turns_fts(rowid, text) VALUES (new.id, new.text); END",
    # Turns stored before this migration.
    "INSERT INTO turns_fts(turns_fts) VALUES ('rebuild')",
)
_SQLITE_DOWN = (
    "DROP TRIGGER IF EXISTS turns_fts_au",
    "DROP TRIGGER IF EXISTS turns_fts_ad",
    "DROP TRIGGER IF EXISTS turns_fts_ai",
    "DROP TABLE IF EXISTS turns_fts",
)


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        # Must be the very expression voice_agent.storage.call_search queries with.
        op.execute(
            "CREATE INDEX ix_turns_text_fts ON turns USING gin (to_tsvector('english', text))"
        )
    elif dialect == "sqlite":
        for statement in _SQLITE_UP:
            op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_turns_text_fts")
    elif dialect == "sqlite":
        for statement in _SQLITE_DOWN:
            op.execute(statement)
