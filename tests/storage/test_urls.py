from __future__ import annotations

import re
from pathlib import Path

import pytest

from voice_agent.storage.urls import async_url, sqlite_path


def test_default_sqlite_url_gets_async_driver_and_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert (
        async_url("sqlite:///./data/voice_agent.db") == "sqlite+aiosqlite:///./data/voice_agent.db"
    )
    assert (tmp_path / "data").is_dir()


def test_absolute_sqlite_path_creates_nested_directories(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "calls.db"
    assert async_url(f"sqlite:///{target}") == f"sqlite+aiosqlite:///{target}"
    assert target.parent.is_dir()
    assert not target.exists()  # only the directory; SQLite creates the file


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (
            "postgresql://u:p%40ss@db.example:5433/va",
            "postgresql+asyncpg://u:p%40ss@db.example:5433/va",
        ),
        ("postgres://u@db/va", "postgresql+asyncpg://u@db/va"),
        ("postgresql+asyncpg://u@db/va", "postgresql+asyncpg://u@db/va"),
        ("sqlite+aiosqlite:///:memory:", "sqlite+aiosqlite:///:memory:"),
        ("sqlite://", "sqlite+aiosqlite://"),
        ("postgres://u@db/va?sslmode=require", "postgresql+asyncpg://u@db/va?ssl=require"),
    ],
)
def test_scheme_mapping_keeps_the_rest_of_the_url(given: str, expected: str) -> None:
    assert async_url(given) == expected


@pytest.mark.parametrize("url", ["mysql://u@db/va", "postgresql+psycopg2://u@db/va", "redis://x"])
def test_unknown_scheme_is_named_in_the_error(url: str) -> None:
    scheme = url.split("://")[0]
    with pytest.raises(ValueError, match=re.escape(f"'{scheme}'")):
        async_url(url)


@pytest.mark.parametrize("url", ["", "voice_agent.db", "not a url"])
def test_text_that_is_not_a_url_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match="not a URL"):
        async_url(url)


def test_directory_that_cannot_be_created_is_named(tmp_path: Path) -> None:
    blocker = tmp_path / "taken"
    blocker.write_text("a file where the directory should be")
    with pytest.raises(OSError, match=r"cannot create the SQLite database directory .*taken"):
        async_url(f"sqlite:///{blocker}/sub/voice_agent.db")


def test_sqlite_path() -> None:
    assert sqlite_path("sqlite:///./data/x.db") == Path("./data/x.db")
    assert sqlite_path("sqlite:///:memory:") is None
    assert sqlite_path("postgresql://u@h/d") is None
