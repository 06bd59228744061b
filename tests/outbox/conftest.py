"""The outbox's tests run on SQLite and PostgreSQL, with the storage tests' databases."""

from tests.storage.conftest import database_url, db, pg_session_database

__all__ = ["database_url", "db", "pg_session_database"]
