"""Turn the configured DATABASE_URL into the async driver URL SQLAlchemy needs."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

# Operators write the plain scheme (as in every hosting panel); the async driver is our concern.
_SCHEMES: dict[str, str] = {
    "sqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
    "postgresql+asyncpg": "postgresql+asyncpg",
}


def async_url(database_url: str) -> str:
    """Map ``sqlite:///path`` and ``postgresql://…`` to their async drivers.

    For a SQLite file the parent directory is created, so the default
    ``sqlite:///./data/voice_agent.db`` works on a fresh checkout. Raises
    ValueError for an unparsable URL or an unsupported scheme, and OSError when
    the SQLite directory cannot be created.
    """
    url = _parse(database_url)
    driver = _SCHEMES.get(url.drivername)
    if driver is None:
        raise ValueError(
            f"unsupported database scheme {url.drivername!r} in DATABASE_URL: "
            "use sqlite:///path/to/file.db or postgresql://user@host/dbname"
        )
    if driver == "postgresql+asyncpg" and "sslmode" in url.query:
        # Hosting panels hand out libpq's ?sslmode=…; asyncpg takes the same values as ?ssl=….
        sslmode = url.query["sslmode"]
        url = url.difference_update_query(["sslmode"]).update_query_dict({"ssl": sslmode})
        return url.set(drivername=driver).render_as_string(hide_password=False)
    # Swap only the scheme: re-rendering the URL would re-escape the user's text.
    result = driver + database_url[database_url.index("://") :]
    if driver.startswith("sqlite"):
        _prepare_sqlite_directory(result)
    return result


def sqlite_path(database_url: str) -> Path | None:
    """The file behind a SQLite URL, or None for PostgreSQL and in-memory SQLite."""
    url = _parse(database_url)
    if not url.drivername.startswith("sqlite"):
        return None
    database = url.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        return None
    return Path(database)


def _parse(database_url: str) -> URL:
    if "://" not in database_url:
        raise ValueError(f"DATABASE_URL {database_url!r} is not a URL (expected scheme://…)")
    try:
        return make_url(database_url)
    except ArgumentError as exc:
        raise ValueError(f"DATABASE_URL could not be parsed: {exc}") from exc


def _prepare_sqlite_directory(url: str) -> None:
    path = sqlite_path(url)
    if path is None:
        return
    parent = path.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OSError(
            exc.errno, f"cannot create the SQLite database directory {parent}: {exc.strerror}"
        ) from exc
