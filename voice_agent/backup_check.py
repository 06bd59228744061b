"""`voice-agent backup check FILE`: prove a PostgreSQL dump restores.

The dump (pg_dump's custom format, or plain SQL) is restored into a scratch database made
for the purpose on the server of DATABASE_URL (or --server), then checked: every table the
application defines is there, the schema is at a known migration, and each table's rows
are counted. The scratch database is dropped afterwards, whatever happened. Exit 0 when
the backup is usable, 1 when it is not (the lines say why)."""

from __future__ import annotations

import asyncio
import secrets
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from voice_agent.storage.tables import metadata

_RESTORE_TIMEOUT_S = 3600


@dataclass
class BackupReport:
    revision: str | None = None
    rows: dict[str, int] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.missing and not self.problems and self.revision is not None

    def lines(self) -> list[str]:
        out = [f"migration: {self.revision or 'none (no alembic_version)'}"]
        out += [f"{name}: {count} rows" for name, count in sorted(self.rows.items())]
        out += [f"MISSING table {name}" for name in self.missing]
        out += [f"PROBLEM {p}" for p in self.problems]
        out.append("backup OK" if self.ok else "backup NOT usable")
        return out


def _with_database(url: str, database: str) -> str:
    parts = urlsplit(url.replace("postgresql+asyncpg://", "postgresql://"))
    return urlunsplit(parts._replace(path="/" + database))


def _restore(dump: Path, target_url: str) -> str | None:
    """Restore ``dump`` into ``target_url``; the tool's complaint when it failed."""
    with dump.open("rb") as f:
        custom = f.read(5) == b"PGDMP"
    if custom:
        tool = shutil.which("pg_restore")
        argv = [tool or "pg_restore", "--no-owner", "--no-privileges", "--exit-on-error"]
        argv += ["--dbname", target_url, str(dump)]
    else:
        tool = shutil.which("psql")
        argv = [tool or "psql", "--quiet", "--set", "ON_ERROR_STOP=1", target_url]
        argv += ["--file", str(dump)]
    if tool is None:
        return f"{argv[0]} is not installed (apt-get install postgresql-client)"
    result = subprocess.run(argv, capture_output=True, timeout=_RESTORE_TIMEOUT_S, check=False)
    if result.returncode != 0:
        lines = result.stderr.decode(errors="replace").strip().splitlines()
        return lines[-1] if lines else f"exit status {result.returncode}"
    return None


async def check_backup(dump: Path, server_url: str) -> BackupReport:
    report = BackupReport()
    scratch = f"va_backup_check_{secrets.token_hex(4)}"
    admin_url = _with_database(server_url, "postgres")
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'CREATE DATABASE "{scratch}"')
    finally:
        await conn.close()
    try:
        target = _with_database(server_url, scratch)
        failure = await asyncio.to_thread(_restore, dump, target)
        if failure:
            report.problems.append(f"restore failed: {failure}")
            return report
        conn = await asyncpg.connect(target)
        try:
            tables = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            present = {r["tablename"] for r in tables}
            if "alembic_version" in present:
                # Features branch off a shared revision: one row per head.
                heads = await conn.fetch("SELECT version_num FROM alembic_version ORDER BY 1")
                report.revision = ", ".join(r["version_num"] for r in heads) or None
            for table in sorted(metadata.tables):
                if table not in present:
                    report.missing.append(table)
                    continue
                report.rows[table] = await conn.fetchval(f'SELECT count(*) FROM "{table}"')
        finally:
            await conn.close()
    finally:
        conn = await asyncpg.connect(admin_url)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')
        finally:
            await conn.close()
    return report
