"""`voice-agent backup check FILE` against real pg_dump output: a good dump (custom and
plain formats) restores into a scratch database with every table and the same row counts;
a damaged one is reported unusable (exit 1); the scratch database never stays behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from tests.app.conftest import PG
from tests.deploy.processes import ROOT

pytestmark = pytest.mark.postgres


def cli(*args: str, database_url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DATABASE_URL": database_url}
    return subprocess.run(
        [sys.executable, "-m", "voice_agent.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def pg_dump(flag: str, dump: Path, url: str) -> None:
    subprocess.run(["pg_dump", flag, "--file", str(dump), url], check=True, timeout=120)


async def scratch_databases() -> set[str]:
    conn = await asyncpg.connect(database="postgres", **PG)
    try:
        rows = await conn.fetch("SELECT datname FROM pg_database")
    finally:
        await conn.close()
    return {r["datname"] for r in rows if r["datname"].startswith("va_backup_check_")}


@pytest.mark.parametrize("dump_format", ["custom", "plain"])
async def test_a_good_dump_restores_with_its_rows(
    pg_database: str, tmp_path: Path, dump_format: str
) -> None:
    url = f"postgresql://{PG['user']}@{PG['host']}:{PG['port']}/{pg_database}"
    added = cli(
        "tenant", "add", "acme", "--name", "Acme", "--number", "+14155550123", database_url=url
    )
    assert added.returncode == 0, added.stderr
    conn = await asyncpg.connect(url)
    try:
        tenants = await conn.fetchval("SELECT count(*) FROM tenants")
    finally:
        await conn.close()
    dump = tmp_path / f"voice.{dump_format}"
    flag = "--format=custom" if dump_format == "custom" else "--format=plain"
    pg_dump(flag, dump, url)
    before = await scratch_databases()

    checked = cli("backup", "check", str(dump), database_url=url)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    lines = checked.stdout.splitlines()
    assert f"tenants: {tenants} rows" in lines, lines
    assert lines[-1] == "backup OK"
    assert lines[0].startswith("migration: ") and "none" not in lines[0]
    assert await scratch_databases() == before  # dropped again


async def test_a_damaged_dump_is_not_usable(pg_database: str, tmp_path: Path) -> None:
    url = f"postgresql://{PG['user']}@{PG['host']}:{PG['port']}/{pg_database}"
    assert cli("db", "upgrade", database_url=url).returncode == 0
    dump = tmp_path / "voice.dump"
    pg_dump("--format=custom", dump, url)
    data = dump.read_bytes()
    dump.write_bytes(data[: len(data) // 3])  # cut short, as a failed upload would
    before = await scratch_databases()
    checked = cli("backup", "check", str(dump), database_url=url)
    assert checked.returncode == 1, checked.stdout + checked.stderr
    assert "backup NOT usable" in checked.stdout
    assert await scratch_databases() == before
    missing = cli("backup", "check", str(tmp_path / "nothing.dump"), database_url=url)
    assert missing.returncode == 2 and "FILE" in missing.stderr
